//! Bounds on what an audio file may declare, checked before anything is sized from it.
//!
//! The resampler's FFT sizes follow from the ratio of the source rate to the target rate, so
//! a header that claims 1 Hz or 4294967295 Hz would make it ask for gigabytes; channel counts
//! and frames per packet size the decoder's buffers. All of these come from the file and are
//! checked here first. Duration is different: headers lie both ways (streaming writers leave
//! placeholder sizes), so the cap is enforced on the audio actually decoded, which keeps
//! memory and CPU proportional to the cap rather than to the claim.

use symphonia::core::audio::SignalSpec;
use symphonia::core::codecs::{CodecParameters, CODEC_TYPE_ALAC};

/// Lowest sample rate accepted (from a file, a clip, or as a conversion target).
pub const MIN_SAMPLE_RATE: u32 = 1_000;
/// Highest sample rate accepted: twice the highest rate studio gear records at.
pub const MAX_SAMPLE_RATE: u32 = 384_000;
/// Most channels accepted; also the most symphonia can describe.
pub const MAX_CHANNELS: usize = 32;
/// Largest packet a codec may declare. FLAC's largest block is 65535 frames and MS ADPCM's
/// is about 131k; the decoder allocates this many frames per channel up front.
pub const MAX_FRAMES_PER_PACKET: u64 = 1 << 18;

/// Limits for decoding one audio file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioLimits {
    /// Longest audio decoded, in seconds of the source; a longer file is refused with
    /// [`crate::AudioError::TooLong`] as soon as decoding passes the cap. 0 refuses
    /// every file that has samples.
    pub max_seconds: u32,
}

impl AudioLimits {
    /// The default, for a command line working on the user's own files: 4 hours covers
    /// a long meeting or an audiobook chapter, and a whole decoded clip at 16 kHz stays
    /// under 1 GB (streamed transcription stays flat whatever the length).
    pub const CLI: AudioLimits = AudioLimits {
        max_seconds: 4 * 3600,
    };

    /// For a server decoding uploads from clients it does not trust: 1 hour. Each request
    /// holds its decoded clip in memory (230 MB at 16 kHz for an hour) and requests run
    /// side by side, so the cap is tighter than the command line's.
    pub const SERVER: AudioLimits = AudioLimits { max_seconds: 3600 };

    /// The server preset (see [`AudioLimits::SERVER`]).
    pub const fn server() -> Self {
        Self::SERVER
    }

    /// These limits with another duration cap (e.g. from `--max-audio-s`).
    pub const fn with_max_seconds(self, max_seconds: u32) -> Self {
        AudioLimits { max_seconds }
    }

    /// Source frames allowed at `rate` Hz.
    pub(crate) fn max_frames(&self, rate: u32) -> u64 {
        u64::from(self.max_seconds) * u64::from(rate)
    }
}

impl Default for AudioLimits {
    fn default() -> Self {
        Self::CLI
    }
}

/// What is wrong with a declared stream format, before any path is attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormatProblem {
    Rate(u32),
    NoChannels,
    Channels(usize),
    Packet(u64),
}

pub(crate) fn check_rate(rate: u32) -> Result<(), FormatProblem> {
    if (MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
        Ok(())
    } else {
        Err(FormatProblem::Rate(rate))
    }
}

pub(crate) fn check_channels(channels: usize) -> Result<(), FormatProblem> {
    match channels {
        0 => Err(FormatProblem::NoChannels),
        c if c > MAX_CHANNELS => Err(FormatProblem::Channels(c)),
        _ => Ok(()),
    }
}

pub(crate) fn check_packet(frames: u64) -> Result<(), FormatProblem> {
    if frames > MAX_FRAMES_PER_PACKET {
        Err(FormatProblem::Packet(frames))
    } else {
        Ok(())
    }
}

/// Checks what the container declares; values it leaves out are checked on the first
/// decoded packet ([`check_spec`]).
pub(crate) fn check_params(params: &CodecParameters) -> Result<(), FormatProblem> {
    if let Some(rate) = params.sample_rate {
        check_rate(rate)?;
    }
    if let Some(channels) = params.channels {
        check_channels(channels.count())?;
    }
    if let Some(frames) = params.max_frames_per_packet {
        check_packet(frames)?;
    }
    if params.codec == CODEC_TYPE_ALAC {
        check_alac_cookie(params.extra_data.as_deref().unwrap_or_default())?;
    }
    Ok(())
}

/// ALAC's decoder sizes its buffer from the magic cookie's frame length (a u32) and takes
/// its rate from there too, not from the container.
fn check_alac_cookie(cookie: &[u8]) -> Result<(), FormatProblem> {
    if cookie.len() != 24 && cookie.len() != 48 {
        return Ok(()); // the only sizes symphonia reads; it refuses the rest itself
    }
    let be =
        |p: usize| u32::from_be_bytes([cookie[p], cookie[p + 1], cookie[p + 2], cookie[p + 3]]);
    check_packet(u64::from(be(0)))?;
    check_rate(be(20))
}

pub(crate) fn check_spec(spec: &SignalSpec) -> Result<(), FormatProblem> {
    check_rate(spec.rate)?;
    check_channels(spec.channels.count())
}

/// Reads the `fmt ` chunk of a RIFF/WAVE file from its first bytes and checks rate and
/// channels, because symphonia's WAV reader asserts on some impossible values (a 0 Hz
/// time base panics) and refuses others with a generic message. Other containers are left
/// to the checks on symphonia's codec parameters.
pub(crate) fn check_wav_head(head: &[u8]) -> Result<(), FormatProblem> {
    let n = head.len();
    if n < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Ok(());
    }
    let u16_at = |p: usize| u16::from_le_bytes([head[p], head[p + 1]]);
    let u32_at = |p: usize| u32::from_le_bytes([head[p], head[p + 1], head[p + 2], head[p + 3]]);
    let mut pos = 12usize;
    while pos + 8 <= n {
        let len = u32_at(pos + 4) as usize;
        if &head[pos..pos + 4] == b"fmt " {
            if pos + 16 > n {
                return Ok(());
            }
            check_channels(usize::from(u16_at(pos + 10)))?;
            return check_rate(u32_at(pos + 12));
        }
        // Chunks are padded to an even length.
        pos = pos
            .saturating_add(8)
            .saturating_add(len.saturating_add(len & 1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_bounds_are_inclusive() {
        assert!(check_rate(MIN_SAMPLE_RATE).is_ok());
        assert!(check_rate(MAX_SAMPLE_RATE).is_ok());
        assert_eq!(check_rate(999), Err(FormatProblem::Rate(999)));
        assert_eq!(check_rate(384_001), Err(FormatProblem::Rate(384_001)));
        assert_eq!(check_rate(0), Err(FormatProblem::Rate(0)));
    }

    #[test]
    fn channel_bounds() {
        assert_eq!(check_channels(0), Err(FormatProblem::NoChannels));
        assert!(check_channels(32).is_ok());
        assert_eq!(check_channels(33), Err(FormatProblem::Channels(33)));
    }

    #[test]
    fn presets_differ_and_scale_with_rate() {
        assert_eq!(AudioLimits::default(), AudioLimits::CLI);
        assert!(AudioLimits::server().max_seconds < AudioLimits::CLI.max_seconds);
        let l = AudioLimits::CLI.with_max_seconds(2);
        assert_eq!(l.max_frames(16_000), 32_000);
    }

    #[test]
    fn alac_cookie_frame_length_and_rate_are_checked() {
        let cookie = |frames: u32, rate: u32| {
            let mut c = frames.to_be_bytes().to_vec();
            c.extend_from_slice(&[0, 16, 40, 10, 14, 1, 0, 255, 0, 0, 0, 0, 0, 0, 0, 0]);
            c.extend_from_slice(&rate.to_be_bytes());
            c.into_boxed_slice()
        };
        let params = |c| {
            let mut p = CodecParameters::new();
            p.for_codec(CODEC_TYPE_ALAC).with_extra_data(c);
            p
        };
        assert!(check_params(&params(cookie(4096, 44_100))).is_ok());
        assert_eq!(
            check_params(&params(cookie(u32::MAX, 44_100))),
            Err(FormatProblem::Packet(u64::from(u32::MAX)))
        );
        assert_eq!(
            check_params(&params(cookie(4096, 1))),
            Err(FormatProblem::Rate(1))
        );
    }

    #[test]
    fn wav_head_with_a_short_fmt_chunk_is_left_to_symphonia() {
        assert!(check_wav_head(b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0").is_ok());
        assert!(check_wav_head(b"not a wav").is_ok());
    }
}
