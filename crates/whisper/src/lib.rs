//! percept-whisper: Whisper speech recognition on candle.
//!
//! Loads CTranslate2 `model.bin` or Hugging Face safetensors directories, computes the log-mel
//! spectrogram in code, and decodes like Whisper's reference (timestamps, long-form seeking,
//! temperature fallback, no-speech detection, beam search) with a cached decoder.

mod ct2;
pub mod decode;
mod engine;
pub mod filters;
pub mod mel;
pub mod model;
pub mod silence;
mod stage;
pub mod tokens;
pub mod transcribe;
pub mod weights;

pub use candle_core::Device;
pub use decode::Task;
pub use engine::{Whisper, WhisperError};
pub use model::Precision;
pub use percept_media::AudioLimits;
pub use silence::DEFAULT_SILENCE_GATE_DBFS;
pub use stage::SpeechStage;
pub use transcribe::{Options, SampleSource, SliceSource, Timings};
