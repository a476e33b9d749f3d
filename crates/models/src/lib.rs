//! percept-models: where model files come from and how they are checked.

mod store;

pub use store::{locate, Store, StoreError};
