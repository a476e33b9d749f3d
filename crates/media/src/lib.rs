//! Media decoding for the pipeline's stages.

pub mod audio;
mod audio_container;
mod audio_limits;
mod audio_mp4;
mod audio_opus;
mod audio_resample;
mod audio_stream;
pub mod image;
mod image_colours;
mod image_content;
mod image_exif;
mod image_jpeg;
pub mod image_resize;
pub use image_content::NO_SUBJECT_FACT;

pub use audio::{
    decode_file, decode_file_with, is_audio_only, resample_clip, AudioError, AudioLimits,
    AudioStream, MAX_CHANNELS, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, OPUS_ENABLED, SPEECH_RATE,
};
pub use audio_resample::MonoResampler;
