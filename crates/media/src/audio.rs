//! Audio files to mono clips at a wanted rate: symphonia decodes, channels are averaged,
//! rubato resamples. `AudioStream` yields the result in chunks so hour-long files never sit
//! in memory at their source rate.

use crate::audio_resample::MonoResampler;
use percept_core::AudioClip;
use std::fs::File;
use std::path::Path;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Whisper (and most speech models) want 16 kHz.
pub const SPEECH_RATE: u32 = 16_000;

/// Packets that fail to decode in a row before the file is declared broken.
const MAX_BAD_PACKETS: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error("{path}: cannot open audio file: {source}")]
    Open {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: is a directory, not an audio file")]
    IsDirectory { path: String },
    #[error("{path}: file is empty")]
    Empty { path: String },
    #[error("{path}: not a recognised audio format ({reason})")]
    Format { path: String, reason: String },
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
}

/// A decoding audio file that yields mono samples at `target_rate` chunk by chunk.
pub struct AudioStream {
    path: String,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    target_rate: u32,
    source_rate: u32,
    channels: usize,
    resampler: Option<MonoResampler>,
    sample_buf: Option<SampleBuffer<f32>>,
    mono: Vec<f32>,
    decoded_frames: u64,
    finished: bool,
}

impl AudioStream {
    /// Opens and probes `path`; fails early on files that are not audio.
    pub fn open(path: &Path, target_rate: u32) -> Result<Self, AudioError> {
        let name = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| AudioError::Open {
            path: name.clone(),
            source,
        })?;
        if meta.is_dir() {
            return Err(AudioError::IsDirectory { path: name });
        }
        if meta.len() == 0 {
            return Err(AudioError::Empty { path: name });
        }
        let mut file = File::open(path).map_err(|source| AudioError::Open {
            path: name.clone(),
            source,
        })?;
        check_wav_header(&mut file).map_err(|reason| AudioError::Invalid {
            path: name.clone(),
            reason,
        })?;
        let mss = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        // Some symphonia readers assert on impossible headers; a panic there is bad input.
        let probed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            symphonia::default::get_probe().format(
                &hint,
                mss,
                &FormatOptions::default(),
                &MetadataOptions::default(),
            )
        }))
        .map_err(|_| AudioError::Format {
            path: name.clone(),
            reason: "malformed header".into(),
        })?
        .map_err(|e| AudioError::Format {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioError::NoTrack { path: name.clone() })?;
        let params = &track.codec_params;
        if params.sample_rate == Some(0) {
            return Err(AudioError::Invalid {
                path: name,
                reason: "sample rate is 0".into(),
            });
        }
        if params.channels.map(|c| c.count()) == Some(0) {
            return Err(AudioError::Invalid {
                path: name,
                reason: "0 channels".into(),
            });
        }
        let track_id = track.id;
        let source_rate = params.sample_rate.unwrap_or(0);
        let channels = params.channels.map(|c| c.count()).unwrap_or(0);
        let decoder = symphonia::default::get_codecs()
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

    fn err_decode(&self, reason: impl ToString) -> AudioError {
        AudioError::Decode {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// Next chunk of mono samples at the target rate; `Ok(None)` at the end of the stream.
    /// A stream that stops early (truncated file) ends with its usable part.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>, AudioError> {
        let mut bad_in_a_row = 0usize;
        loop {
            if self.finished {
                return Ok(None);
            }
            let packet = match self.format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(_)) | Err(SymError::ResetRequired) => {
                    return self.finish().map(Some);
                }
                Err(e) if self.decoded_frames > 0 => {
                    // Corrupt data after good audio: keep what was usable.
                    let _ = e;
                    return self.finish().map(Some);
                }
                Err(e) => return Err(self.err_decode(e)),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::DecodeError(msg)) => {
                    bad_in_a_row += 1;
                    if bad_in_a_row > MAX_BAD_PACKETS {
                        return Err(self.err_decode(msg));
                    }
                    continue;
                }
                Err(SymError::IoError(_)) => return self.finish().map(Some),
                Err(e) => return Err(self.err_decode(e)),
            };
            bad_in_a_row = 0;
            let spec = *decoded.spec();
            let channels = spec.channels.count();
            if spec.rate == 0 {
                return Err(AudioError::Invalid {
                    path: self.path.clone(),
                    reason: "sample rate is 0".into(),
                });
            }
            if channels == 0 {
                return Err(AudioError::Invalid {
                    path: self.path.clone(),
                    reason: "0 channels".into(),
                });
            }
            if self.resampler.is_none() {
                self.source_rate = spec.rate;
                self.channels = channels;
                let rs = MonoResampler::new(spec.rate, self.target_rate).map_err(|reason| {
                    AudioError::Resample {
                        path: self.path.clone(),
                        reason,
                    }
                })?;
                self.resampler = Some(rs);
            } else if spec.rate != self.source_rate {
                return Err(AudioError::Invalid {
                    path: self.path.clone(),
                    reason: format!(
                        "sample rate changes mid-stream ({} -> {} Hz)",
                        self.source_rate, spec.rate
                    ),
                });
            }
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            let need_new = match &self.sample_buf {
                Some(b) => b.capacity() < decoded.capacity() * channels,
                None => true,
            };
            if need_new {
                self.sample_buf = Some(SampleBuffer::new(decoded.capacity() as u64, spec));
            }
            let Some(buf) = self.sample_buf.as_mut() else {
                continue;
            };
            buf.copy_interleaved_ref(decoded);
            downmix(buf.samples(), channels, &mut self.mono);
            self.decoded_frames += frames as u64;
            let mut out = Vec::new();
            if let Some(rs) = self.resampler.as_mut() {
                rs.push(&self.mono, &mut out)
                    .map_err(|reason| AudioError::Resample {
                        path: self.path.clone(),
                        reason,
                    })?;
            }
            if !out.is_empty() {
                return Ok(Some(out));
            }
        }
    }

    fn finish(&mut self) -> Result<Vec<f32>, AudioError> {
        self.finished = true;
        if self.decoded_frames == 0 {
            return Err(AudioError::NoSamples {
                path: self.path.clone(),
            });
        }
        let mut out = Vec::new();
        if let Some(rs) = self.resampler.as_mut() {
            rs.finish(&mut out).map_err(|reason| AudioError::Resample {
                path: self.path.clone(),
                reason,
            })?;
        }
        Ok(out)
    }
}

/// Rejects RIFF/WAVE headers with 0 channels or a 0 Hz rate before symphonia sees them
/// (its WAV reader panics on those). Leaves `file` at the start.
fn check_wav_header(file: &mut File) -> Result<(), String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut head = [0u8; 4096];
    let n = file.read(&mut head).map_err(|e| e.to_string())?;
    file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let head = &head[..n];
    if n < 12 || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Ok(());
    }
    let mut pos = 12;
    while pos + 8 <= n {
        let id = &head[pos..pos + 4];
        let len = u32::from_le_bytes([head[pos + 4], head[pos + 5], head[pos + 6], head[pos + 7]])
            as usize;
        if id == b"fmt " && pos + 16 <= n {
            let channels = u16::from_le_bytes([head[pos + 10], head[pos + 11]]);
            let rate = u32::from_le_bytes([
                head[pos + 12],
                head[pos + 13],
                head[pos + 14],
                head[pos + 15],
            ]);
            if rate == 0 {
                return Err("sample rate is 0".into());
            }
            if channels == 0 {
                return Err("0 channels".into());
            }
            return Ok(());
        }
        pos = pos.saturating_add(8).saturating_add(len + (len & 1));
    }
    Ok(())
}

/// Averages interleaved channels into `mono` (replacing its contents): a stereo file with
/// speech on one side keeps it, unlike taking channel 0.
fn downmix(interleaved: &[f32], channels: usize, mono: &mut Vec<f32>) {
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

/// Decodes a whole file to mono at `target_rate`.
pub fn decode_file(path: &Path, target_rate: u32) -> Result<AudioClip, AudioError> {
    let mut stream = AudioStream::open(path, target_rate)?;
    let mut samples = Vec::new();
    while let Some(chunk) = stream.next_chunk()? {
        samples.extend_from_slice(&chunk);
    }
    Ok(AudioClip {
        source: stream.path,
        sample_rate: target_rate,
        samples,
    })
}

/// Converts an in-memory clip (e.g. from a microphone) to `target_rate`.
pub fn resample_clip(clip: &AudioClip, target_rate: u32) -> Result<AudioClip, AudioError> {
    if clip.sample_rate == target_rate {
        return Ok(clip.clone());
    }
    let resample_err = |reason| AudioError::Resample {
        path: clip.source.clone(),
        reason,
    };
    let mut rs = MonoResampler::new(clip.sample_rate, target_rate).map_err(resample_err)?;
    let mut samples = Vec::with_capacity(
        (clip.samples.len() as u64 * target_rate as u64 / clip.sample_rate.max(1) as u64) as usize
            + 16,
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
