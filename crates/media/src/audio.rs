//! Audio files to mono clips at a wanted rate: symphonia decodes, channels are averaged,
//! rubato resamples. [`AudioStream`] yields the result in chunks so hour-long files never sit
//! in memory at their source rate. Every file is checked against [`AudioLimits`]: rate and
//! channels before anything is sized from them, duration as it is decoded.

use crate::audio_limits::FormatProblem;
use crate::audio_resample::MonoResampler;
use percept_core::AudioClip;
use std::path::Path;

pub use crate::audio_container::is_audio_only;
pub use crate::audio_limits::{
    AudioLimits, MAX_CHANNELS, MAX_FRAMES_PER_PACKET, MAX_SAMPLE_RATE, MIN_SAMPLE_RATE,
};
pub use crate::audio_opus::OPUS_ENABLED;
pub use crate::audio_stream::AudioStream;

/// Whisper (and most speech models) want 16 kHz.
pub const SPEECH_RATE: u32 = 16_000;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    /// The cause is in the message, not the error chain, so `{:#}` does not print it twice.
    #[error("{path}: cannot open audio file: {cause}")]
    Open { path: String, cause: std::io::Error },
    #[error("{path}: is a directory, not an audio file")]
    IsDirectory { path: String },
    #[error("{path}: file is empty")]
    Empty { path: String },
    #[error("{path}: not a recognised audio format ({reason})")]
    Format { path: String, reason: String },
    #[error("{path}: the file ends early (cut short, or still being written)")]
    Truncated { path: String },
    #[error("{path}: no decodable audio track")]
    NoTrack { path: String },
    #[error("{path}: invalid audio stream: {reason}")]
    Invalid { path: String, reason: String },
    #[error("{path}: cannot decode audio: {reason}")]
    Decode { path: String, reason: String },
    #[error("{path}: contains no audio samples")]
    NoSamples { path: String },
    #[error("{path}: cannot resample: {reason}")]
    Resample { path: String, reason: String },
    #[error("{path}: sample rate {rate} Hz is outside the supported range {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz")]
    SampleRate { path: String, rate: u32 },
    #[error("{path}: {channels} channels, over the limit of {MAX_CHANNELS}")]
    TooManyChannels { path: String, channels: usize },
    #[error("{path}: codec declares {frames} frames per packet, over the limit of {MAX_FRAMES_PER_PACKET}")]
    PacketTooLarge { path: String, frames: u64 },
    #[error("{path}: Opus audio, but this percept was built without Opus (the `opus` cargo feature, which needs libopus-dev)")]
    OpusOff { path: String },
    #[error("{path}: audio is longer than the limit of {max_seconds} s")]
    TooLong { path: String, max_seconds: u32 },
}

impl AudioError {
    pub(crate) fn from_problem(path: &str, problem: FormatProblem) -> Self {
        let path = path.to_string();
        match problem {
            FormatProblem::Rate(rate) => AudioError::SampleRate { path, rate },
            FormatProblem::NoChannels => AudioError::Invalid {
                path,
                reason: "0 channels".into(),
            },
            FormatProblem::Channels(channels) => AudioError::TooManyChannels { path, channels },
            FormatProblem::Packet(frames) => AudioError::PacketTooLarge { path, frames },
        }
    }
}

/// Averages interleaved channels into `mono` (replacing its contents): a stereo file with
/// speech on one side keeps it, unlike taking channel 0.
pub(crate) fn downmix(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
    mono.clear();
    if channels == 1 {
        mono.extend_from_slice(interleaved);
        return;
    }
    let scale = 1.0 / channels as f32;
    mono.extend(
        interleaved
            .chunks_exact(channels)
            .map(|f| f.iter().sum::<f32>() * scale),
    );
}

/// Decodes a whole file to mono at `target_rate` with the default (command-line) limits.
pub fn decode_file(path: &Path, target_rate: u32) -> Result<AudioClip, AudioError> {
    decode_file_with(path, target_rate, &AudioLimits::default())
}

/// Decodes a whole file to mono at `target_rate`, refusing it when it breaks `limits`.
pub fn decode_file_with(
    path: &Path,
    target_rate: u32,
    limits: &AudioLimits,
) -> Result<AudioClip, AudioError> {
    let mut stream = AudioStream::open_with(path, target_rate, limits)?;
    let mut samples = Vec::new();
    while stream.read_into(&mut samples)? {}
    Ok(AudioClip {
        source: stream.path().to_string(),
        sample_rate: target_rate,
        samples,
    })
}

/// Converts an in-memory clip (e.g. from a microphone) to `target_rate`.
pub fn resample_clip(clip: &AudioClip, target_rate: u32) -> Result<AudioClip, AudioError> {
    if clip.sample_rate == target_rate {
        return Ok(clip.clone());
    }
    for rate in [clip.sample_rate, target_rate] {
        crate::audio_limits::check_rate(rate)
            .map_err(|p| AudioError::from_problem(&clip.source, p))?;
    }
    let resample_err = |reason| AudioError::Resample {
        path: clip.source.clone(),
        reason,
    };
    let mut rs = MonoResampler::new(clip.sample_rate, target_rate).map_err(resample_err)?;
    let mut samples = Vec::with_capacity(
        (clip.samples.len() as u64 * u64::from(target_rate)).div_ceil(u64::from(clip.sample_rate))
            as usize,
    );
    rs.push(&clip.samples, &mut samples).map_err(resample_err)?;
    rs.finish(&mut samples).map_err(resample_err)?;
    Ok(AudioClip {
        source: clip.source.clone(),
        sample_rate: target_rate,
        samples,
    })
}

#[cfg(test)]
#[path = "audio_tests.rs"]
mod tests;
