//! Opus through libopus. symphonia's Ogg and Matroska/WebM demuxers hand out Opus packets
//! (`CODEC_TYPE_OPUS`) but symphonia 0.5 has no Opus decoder; [`codecs`] is symphonia's own
//! codec registry with this adapter added. The `opus` cargo feature (on by default) links
//! libopus; without it an Opus track is refused with [`crate::AudioError::OpusOff`].
//!
//! The adapter reads the `OpusHead` header (RFC 7845: the Ogg identification packet, or a
//! WebM track's CodecPrivate) for the channel count, the pre-skip and the output gain, decodes
//! at 48 kHz (Opus's own rate, whatever rate the original had) and drops the first pre-skip
//! samples, the encoder's priming. Only single-stream files (mono or stereo, every voice note
//! and browser recording) are decoded; a multistream (surround) file gets a clear error.

use std::sync::OnceLock;
use symphonia::core::codecs::CodecRegistry;

/// Opus's decoding rate: 48 kHz, whatever rate the original audio had.
#[cfg_attr(not(feature = "opus"), allow(dead_code))]
pub(crate) const OPUS_RATE: u32 = 48_000;

/// Whether this build decodes Opus (the `opus` cargo feature).
pub const OPUS_ENABLED: bool = cfg!(feature = "opus");

/// symphonia's codecs, plus Opus when the `opus` feature is on.
pub(crate) fn codecs() -> &'static CodecRegistry {
    static CODECS: OnceLock<CodecRegistry> = OnceLock::new();
    CODECS.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        #[cfg(feature = "opus")]
        registry.register_all::<decoder::OpusDecoder>();
        registry
    })
}

/// What an `OpusHead` header says (RFC 7845, section 5.1).
#[cfg_attr(not(feature = "opus"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpusHead {
    pub channels: u8,
    pub pre_skip: u16,
    /// Output gain in dB, Q7.8 fixed point, to apply to the decoded audio.
    pub gain_q8: i16,
    pub streams: u8,
    pub coupled: u8,
}

#[cfg_attr(not(feature = "opus"), allow(dead_code))]
impl OpusHead {
    /// Parses the header; `None` when it is not an `OpusHead` or is cut short.
    pub(crate) fn parse(b: &[u8]) -> Option<OpusHead> {
        if b.len() < 19 || &b[..8] != b"OpusHead" || b[8] >> 4 != 0 {
            return None;
        }
        let channels = b[9];
        let pre_skip = u16::from_le_bytes([b[10], b[11]]);
        let gain_q8 = i16::from_le_bytes([b[16], b[17]]);
        let (streams, coupled) = match b[18] {
            0 => (1, channels.saturating_sub(1)),
            _ if b.len() >= 21 + usize::from(channels) => (b[19], b[20]),
            _ => return None,
        };
        Some(OpusHead {
            channels,
            pre_skip,
            gain_q8,
            streams,
            coupled,
        })
    }
}

#[cfg(feature = "opus")]
mod decoder {
    use super::{OpusHead, OPUS_RATE};
    use std::sync::Mutex;
    use symphonia::core::audio::{AsAudioBufferRef, AudioBuffer, AudioBufferRef, Channels};
    use symphonia::core::audio::{Signal, SignalSpec};
    use symphonia::core::codecs::{CodecDescriptor, CodecParameters, Decoder, DecoderOptions};
    use symphonia::core::codecs::{FinalizeResult, CODEC_TYPE_OPUS};
    use symphonia::core::errors::{decode_error, unsupported_error, Result};
    use symphonia::core::formats::Packet;
    use symphonia::core::support_codec;

    /// The longest Opus packet: 120 ms at 48 kHz.
    const MAX_PACKET_FRAMES: usize = 5760;

    /// A symphonia [`Decoder`] over libopus. The libopus state is not `Sync`, which
    /// symphonia's trait asks for, so it sits behind an (always uncontended) mutex.
    pub(crate) struct OpusDecoder {
        params: CodecParameters,
        opus: Mutex<opus::Decoder>,
        channels: usize,
        pre_skip_left: usize,
        pre_skip: usize,
        interleaved: Vec<f32>,
        buf: AudioBuffer<f32>,
    }

    fn opus_error(e: opus::Error) -> symphonia::core::errors::Error {
        symphonia::core::errors::Error::DecodeError(e.code().description())
    }

    impl Decoder for OpusDecoder {
        fn try_new(params: &CodecParameters, _options: &DecoderOptions) -> Result<Self> {
            let head = params.extra_data.as_deref().and_then(OpusHead::parse);
            let head = match head {
                Some(h) => h,
                // A container without the header: trust its channel count, no pre-skip.
                None => OpusHead {
                    channels: params.channels.map_or(0, |c| c.count()) as u8,
                    pre_skip: params.delay.unwrap_or(0).min(u32::from(u16::MAX)) as u16,
                    gain_q8: 0,
                    streams: 1,
                    coupled: 0,
                },
            };
            if head.streams != 1 {
                return unsupported_error(
                    "opus: multistream (surround) audio; only mono and stereo Opus is decoded",
                );
            }
            let (count, layout) = match head.coupled {
                0 => (opus::Channels::Mono, Channels::FRONT_LEFT),
                1 => (
                    opus::Channels::Stereo,
                    Channels::FRONT_LEFT | Channels::FRONT_RIGHT,
                ),
                _ => return decode_error("opus: invalid OpusHead channel count"),
            };
            let mut decoder = opus::Decoder::new(OPUS_RATE, count).map_err(opus_error)?;
            if head.gain_q8 != 0 {
                decoder
                    .set_gain(i32::from(head.gain_q8))
                    .map_err(opus_error)?;
            }
            let channels = layout.count();
            let mut out_params = params.clone();
            out_params
                .with_sample_rate(OPUS_RATE)
                .with_channels(layout)
                .with_max_frames_per_packet(MAX_PACKET_FRAMES as u64);
            let spec = SignalSpec::new(OPUS_RATE, layout);
            Ok(OpusDecoder {
                params: out_params,
                opus: Mutex::new(decoder),
                channels,
                pre_skip_left: usize::from(head.pre_skip),
                pre_skip: usize::from(head.pre_skip),
                interleaved: vec![0.0; MAX_PACKET_FRAMES * channels],
                buf: AudioBuffer::new(MAX_PACKET_FRAMES as u64, spec),
            })
        }

        fn supported_codecs() -> &'static [CodecDescriptor] {
            &[support_codec!(CODEC_TYPE_OPUS, "opus", "Opus (libopus)")]
        }

        fn reset(&mut self) {
            if let Ok(mut d) = self.opus.lock() {
                let _ = d.reset_state();
            }
            self.pre_skip_left = self.pre_skip;
        }

        fn codec_params(&self) -> &CodecParameters {
            &self.params
        }

        fn decode(&mut self, packet: &Packet) -> Result<AudioBufferRef<'_>> {
            self.buf.clear();
            // An empty packet would ask libopus to conceal a lost one; there is nothing to
            // decode, so it yields no audio.
            if packet.data.is_empty() {
                return Ok(self.buf.as_audio_buffer_ref());
            }
            let frames = {
                let mut opus = self
                    .opus
                    .lock()
                    .map_err(|_| symphonia::core::errors::Error::DecodeError("opus: poisoned"))?;
                opus.decode_float(&packet.data, &mut self.interleaved, false)
                    .map_err(opus_error)?
            };
            let skip = self.pre_skip_left.min(frames);
            self.pre_skip_left -= skip;
            let kept = frames - skip;
            self.buf.render_reserved(Some(kept));
            let src = &self.interleaved[skip * self.channels..frames * self.channels];
            for ch in 0..self.channels {
                let dst = self.buf.chan_mut(ch);
                for (d, frame) in dst.iter_mut().zip(src.chunks_exact(self.channels)) {
                    *d = frame[ch];
                }
            }
            Ok(self.buf.as_audio_buffer_ref())
        }

        fn finalize(&mut self) -> FinalizeResult {
            FinalizeResult::default()
        }

        fn last_decoded(&self) -> AudioBufferRef<'_> {
            self.buf.as_audio_buffer_ref()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(channels: u8, family: u8, tail: &[u8]) -> Vec<u8> {
        let mut b = b"OpusHead".to_vec();
        b.extend_from_slice(&[1, channels]);
        b.extend_from_slice(&312u16.to_le_bytes());
        b.extend_from_slice(&48_000u32.to_le_bytes());
        b.extend_from_slice(&(-256i16).to_le_bytes());
        b.push(family);
        b.extend_from_slice(tail);
        b
    }

    #[test]
    fn opus_head_fields() {
        let h = OpusHead::parse(&head(2, 0, &[])).expect("parses");
        assert_eq!(
            h,
            OpusHead {
                channels: 2,
                pre_skip: 312,
                gain_q8: -256,
                streams: 1,
                coupled: 1
            }
        );
        let surround = OpusHead::parse(&head(6, 1, &[4, 2, 0, 4, 1, 2, 3, 5])).expect("parses");
        assert_eq!((surround.streams, surround.coupled), (4, 2));
    }

    #[test]
    fn short_or_foreign_headers_are_not_opus_heads() {
        assert_eq!(OpusHead::parse(b"OpusHead"), None);
        assert_eq!(OpusHead::parse(&head(6, 1, &[4, 2])), None);
        let mut v = head(1, 0, &[]);
        v[8] = 0x10; // a major version this reader does not know
        assert_eq!(OpusHead::parse(&v), None);
        assert_eq!(OpusHead::parse(&[0u8; 19]), None);
    }

    #[test]
    fn the_registry_knows_opus_exactly_when_the_feature_is_on() {
        let known = codecs()
            .get_codec(symphonia::core::codecs::CODEC_TYPE_OPUS)
            .is_some();
        assert_eq!(known, OPUS_ENABLED);
        assert!(codecs()
            .get_codec(symphonia::core::codecs::CODEC_TYPE_AAC)
            .is_some());
    }
}
