//! percept-classify: ImageNet-1k image classification on the CPU (or a candle GPU backend).
//!
//! - [`pth`]: torch's legacy checkpoint format, read without torch and checked against
//!   hostile input.

mod pickle;
pub mod pth;

pub use pth::{read_legacy_pth, PthError};
