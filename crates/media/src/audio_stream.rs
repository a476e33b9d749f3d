//! One audio file decoded packet by packet: each packet is downmixed and pushed straight
//! into the resampler, and only the converted samples reach the caller, so a file never
//! sits in memory at its source rate.

use crate::audio::{downmix, AudioError};
use crate::audio_container::{guarded, probe};
use crate::audio_limits::{check_params, check_rate, check_spec, AudioLimits};
use crate::audio_resample::MonoResampler;
use std::path::Path;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatReader;

/// Packets that fail to decode in a row before the file is declared broken.
const MAX_BAD_PACKETS: usize = 32;

/// A decoding audio file that yields mono samples at `target_rate` chunk by chunk.
pub struct AudioStream {
    path: String,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    target_rate: u32,
    source_rate: u32,
    channels: usize,
    limits: AudioLimits,
    resampler: Option<MonoResampler>,
    sample_buf: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
    decoded_frames: u64,
    finished: bool,
}

impl AudioStream {
    /// Opens and probes `path` with the default (command-line) [`AudioLimits`].
    pub fn open(path: &Path, target_rate: u32) -> Result<Self, AudioError> {
        Self::open_with(path, target_rate, &AudioLimits::default())
    }

    /// Opens and probes `path`; fails early on files that are not audio or that declare a
    /// rate, channel count or packet size outside the limits.
    pub fn open_with(
        path: &Path,
        target_rate: u32,
        limits: &AudioLimits,
    ) -> Result<Self, AudioError> {
        let name = path.display().to_string();
        let limit_err = |p| AudioError::from_problem(&name, p);
        // A caller's mistake, but it would size the resampler just like a hostile header.
        check_rate(target_rate).map_err(limit_err)?;
        let format = probe(path, &name)?;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::NoTrack { path: name.clone() })?;
        let params = &track.codec_params;
        check_params(params).map_err(limit_err)?;
        let track_id = track.id;
        let source_rate = params.sample_rate.unwrap_or(0);
        let channels = params.channels.map(|c| c.count()).unwrap_or(0);
        if params.codec == CODEC_TYPE_OPUS && !crate::audio_opus::OPUS_ENABLED {
            return Err(AudioError::OpusOff { path: name });
        }
        let decoder = crate::audio_opus::codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|e| AudioError::Format {
                path: name.clone(),
                reason: e.to_string(),
            })?;
        Ok(AudioStream {
            path: name,
            format,
            decoder,
            track_id,
            target_rate,
            source_rate,
            channels,
            limits: *limits,
            resampler: None,
            sample_buf: None,
            mono: Vec::new(),
            decoded_frames: 0,
            finished: false,
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Sample rate of the file (known once the first packet is decoded for some formats).
    pub fn source_rate(&self) -> u32 {
        self.source_rate
    }

    pub fn source_channels(&self) -> usize {
        self.channels
    }

    pub fn target_rate(&self) -> u32 {
        self.target_rate
    }

    pub fn limits(&self) -> &AudioLimits {
        &self.limits
    }

    fn err_decode(&self, reason: impl ToString) -> AudioError {
        AudioError::Decode {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Next chunk of mono samples at the target rate; `Ok(None)` at the end of the stream.
    /// A stream that stops early (truncated file) ends with its usable part.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        let mut out = Vec::new();
        Ok(self.read_into(&mut out)?.then_some(out))
    }

    /// Appends the next piece of mono samples at the target rate to `out`, without an
    /// intermediate buffer; false once the stream has ended (nothing appended then).
    pub fn read_into(&mut self, out: &mut Vec<f32>) -> Result<bool, AudioError> {
        let start = out.len();
        let mut bad_in_a_row = 0usize;
        loop {
            if self.finished {
                return Ok(false);
            }
            // Demuxers and decoders assert on some impossible data; like a failed probe, a
            // panic there is bad input, reported as an error naming the file.
            let format = &mut self.format;
            let next = guarded(move || format.next_packet())
                .map_err(|_| self.panicked("the container"))?;
            let packet = match next {
                Ok(p) => p,
                Err(SymError::IoError(_)) | Err(SymError::ResetRequired) => {
                    self.finish(out)?;
                    return Ok(true);
                }
                // Corrupt data after good audio: keep what was usable.
                Err(_) if self.decoded_frames > 0 => {
                    self.finish(out)?;
                    return Ok(true);
                }
                Err(e) => return Err(self.err_decode(e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoder = &mut self.decoder;
            let decoded = guarded(move || decoder.decode(&packet));
            let Ok(decoded) = decoded else {
                return Err(self.panicked("the decoder"));
            };
            let decoded = match decoded {
                Ok(d) => d,
                Err(SymError::DecodeError(msg)) => {
                    bad_in_a_row += 1;
                    if bad_in_a_row > MAX_BAD_PACKETS {
                        return Err(self.err_decode(msg));
                    }
                    continue;
                }
                Err(SymError::IoError(_)) => {
                    self.finish(out)?;
                    return Ok(true);
                }
                Err(e) => return Err(self.err_decode(e)),
            };
            bad_in_a_row = 0;
            let spec = *decoded.spec();
            let channels = spec.channels.count();
            let frames = decoded.frames() as u64;
            let capacity = decoded.capacity();
            // The spec of decoded audio is only known here for some formats, so it is
            // checked (and the resampler sized) before anything else uses it.
            let path = &self.path;
            let resampler = match &mut self.resampler {
                Some(rs) if spec.rate == self.source_rate => rs,
                Some(_) => {
                    return Err(AudioError::Invalid {
                        path: path.clone(),
                        reason: format!(
                            "sample rate changes mid-stream ({} -> {} Hz)",
                            self.source_rate, spec.rate
                        ),
                    })
                }
                slot @ None => {
                    check_spec(&spec).map_err(|p| AudioError::from_problem(path, p))?;
                    self.source_rate = spec.rate;
                    self.channels = channels;
                    let rs = MonoResampler::new(spec.rate, self.target_rate).map_err(|reason| {
                        AudioError::Resample {
                            path: path.clone(),
                            reason,
                        }
                    })?;
                    slot.insert(rs)
                }
            };
            if frames == 0 {
                continue;
            }
            if self.decoded_frames + frames > self.limits.max_frames(self.source_rate) {
                self.finished = true;
                return Err(AudioError::TooLong {
                    path: path.clone(),
                    max_seconds: self.limits.max_seconds,
                });
            }
            if self
                .sample_buf
                .as_ref()
                .is_none_or(|b| b.capacity() < capacity * channels)
            {
                self.sample_buf = Some(SampleBuffer::new(capacity as u64, spec));
            }
            let Some(buf) = self.sample_buf.as_mut() else {
                continue;
            };
            buf.copy_interleaved_ref(decoded);
            self.decoded_frames += frames;
            let mono = if channels == 1 {
                buf.samples()
            } else {
                downmix(buf.samples(), channels, &mut self.mono);
                &self.mono
            };
            resampler
                .push(mono, out)
                .map_err(|reason| AudioError::Resample {
                    path: path.clone(),
                    reason,
                })?;
            if out.len() > start {
                return Ok(true);
            }
        }
    }

    fn panicked(&mut self, what: &str) -> AudioError {
        self.finished = true;
        AudioError::Decode {
            path: self.path.clone(),
            reason: format!("malformed audio data ({what} failed)"),
        }
    }

    fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), AudioError> {
        self.finished = true;
        if self.decoded_frames == 0 {
            return Err(AudioError::NoSamples {
                path: self.path.clone(),
            });
        }
        if let Some(rs) = self.resampler.as_mut() {
            rs.finish(out).map_err(|reason| AudioError::Resample {
                path: self.path.clone(),
                reason,
            })?;
        }
        Ok(())
    }
}
