//! Media decoding for the pipeline's stages.

pub mod audio;
mod audio_resample;
pub mod image;
mod image_colours;
mod image_exif;

pub use audio::{decode_file, resample_clip, AudioError, AudioStream, SPEECH_RATE};
pub use audio_resample::MonoResampler;
