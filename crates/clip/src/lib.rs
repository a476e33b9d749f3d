//! percept-clip: the vision stage.
//!
//! - [`preprocess`]: transformers' `CLIPImageProcessor`, Pillow bicubic included, exact.
//! - [`model`]: CLIP image and text towers in the Hugging Face safetensors layout.
//! - [`tokenizer`]: CLIP's byte-level BPE from the bundled OpenAI vocabulary.
//! - [`labels`]: zero-shot tags with prompt ensembling and an on-disk label cache.
//! - [`index`]: the on-disk embedding index behind `percept search`.
//! - [`VisionStage`]: a pipeline [`percept_core::Stage`] from images to vision contexts.

pub mod cache;
mod clip;
pub mod config;
mod error;
pub mod index;
pub mod labels;
pub mod model;
pub mod preprocess;
mod stage;
pub mod tokenizer;

pub use clip::{default_device, Clip, MODEL_ID};
pub use config::{ClipConfig, PreprocessConfig};
pub use error::ClipError;
pub use labels::{LabelSet, TEMPLATES};
pub use stage::VisionStage;
pub use tokenizer::ClipTokenizer;
