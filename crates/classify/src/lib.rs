//! percept-classify: ImageNet-1k image classification with EfficientNet-Lite0.
//!
//! - [`Classifier`]: load a checkpoint (a `.pth` or a store directory), classify decoded
//!   images in one batch, top-k labels with probabilities.
//! - [`efficientnet`]: the network on candle, batch norm folded into the convolutions.
//! - [`pth`]: torch's legacy checkpoint format, read without torch and checked against
//!   hostile input.
//! - [`preprocess`]: shorter side to 256 (Pillow bicubic), center crop 224, `(x - 127) / 128`.

mod bias_act;
mod classifier;
pub mod config;
mod depthwise;
pub mod efficientnet;
mod error;
mod im2col;
mod pickle;
pub mod preprocess;
pub mod pth;

pub use classifier::{Classifier, Label, MODEL_ID};
pub use config::{EfficientNetConfig, Padding, PreprocessConfig};
pub use error::ClassifyError;
pub use pth::{read_legacy_pth, PthError};
