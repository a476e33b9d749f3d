//! Long-form transcription as Whisper's reference does it: 30 s windows, seeking by the last
//! timestamp, temperature fallback, no-speech skipping and conditioning on previous text.
//! Audio is pulled from a `SampleSource` and dropped once passed, so memory stays flat.
//! Windows below the energy gate (see [`crate::silence`]) are skipped before the encoder.

use crate::decode::{Task, WindowDecoder, WindowResult};
use crate::mel::{HOP, N_FFT, N_FRAMES, N_SAMPLES};
use crate::silence::{is_silent, DEFAULT_SILENCE_GATE_DBFS};
use crate::{Whisper as Engine, WhisperError};
use candle_core::Tensor;
use percept_core::{Segment, Transcript};
use percept_media::AudioLimits;
use rand::SeedableRng;
use std::time::{Duration, Instant};

/// 16 kHz mono samples arriving in pieces.
pub trait SampleSource {
    /// Appends the next piece to `out`; returns false at the end.
    fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, WhisperError>;
}

impl SampleSource for percept_media::AudioStream {
    fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, WhisperError> {
        Ok(self.read_into(out)?)
    }
}

/// A clip already in memory, handed out a window at a time so the transcriber's buffer
/// never holds a second copy of a long clip.
pub struct SliceSource<'a>(pub Option<&'a [f32]>);

impl SampleSource for SliceSource<'_> {
    fn read(&mut self, out: &mut Vec<f32>) -> Result<bool, WhisperError> {
        let Some(s) = self.0.take() else {
            return Ok(false);
        };
        let (head, rest) = s.split_at(s.len().min(N_SAMPLES));
        out.extend_from_slice(head);
        if !rest.is_empty() {
            self.0 = Some(rest);
        }
        Ok(true)
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    /// Language code; None detects it on multilingual models (English-only models ignore it).
    pub language: Option<String>,
    pub task: Task,
    /// 1 = greedy.
    pub beam_size: usize,
    pub initial_prompt: Option<String>,
    pub condition_on_previous_text: bool,
    pub temperatures: Vec<f32>,
    pub compression_ratio_threshold: f64,
    pub logprob_threshold: f64,
    /// A window is silence, and adds no segment, when its no-speech probability is above
    /// this and its average log-probability is at or below `logprob_threshold` (Whisper's
    /// reference rule and thresholds: 0.6 and -1.0).
    pub no_speech_threshold: f64,
    /// Energy gate in dBFS: a window whose loudest 20 ms frame stays below it is skipped
    /// as silence without running the encoder or decoder. `None` sends every window to
    /// the model.
    pub silence_gate_dbfs: Option<f32>,
    /// Encode a clip shorter than one window as its own length plus 2 s of padding
    /// instead of a full 30 s window (whisper.cpp's `audio_ctx`). Encoder cost falls with
    /// the square of the length, which is what makes a spoken turn answer fast; off by
    /// default because the model was trained on full windows.
    pub trim_short_window: bool,
    /// Limits on files decoded by `transcribe_file` (in-memory clips were decoded by the
    /// caller); the default is percept-media's command-line preset.
    pub audio_limits: AudioLimits,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            language: None,
            task: Task::Transcribe,
            beam_size: 1,
            initial_prompt: None,
            condition_on_previous_text: true,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            compression_ratio_threshold: 2.4,
            logprob_threshold: -1.0,
            no_speech_threshold: 0.6,
            silence_gate_dbfs: Some(DEFAULT_SILENCE_GATE_DBFS),
            trim_short_window: false,
            audio_limits: AudioLimits::default(),
        }
    }
}

impl Options {
    /// Whisper's no-speech rule: a window is silence when the model gives `<|nospeech|>`
    /// more than `no_speech_threshold` at the first position after the start tokens and
    /// its text is not confidently decoded (average log-probability at or below
    /// `logprob_threshold`, as openai-whisper's `transcribe` tests it).
    pub fn is_no_speech(&self, no_speech_prob: f64, avg_logprob: f64) -> bool {
        no_speech_prob > self.no_speech_threshold && avg_logprob <= self.logprob_threshold
    }
}

/// Where the time went (for `percept bench whisper`).
#[derive(Debug, Clone, Default)]
pub struct Timings {
    pub mel: Duration,
    pub encoder: Duration,
    pub windows: usize,
    pub decode: Duration,
    pub decoded_tokens: usize,
    /// Decoding attempts at temperature > 0 (fallbacks).
    pub fallbacks: usize,
    /// Windows skipped by the energy gate (not counted in `windows`).
    pub silent_windows: usize,
    pub audio_secs: f64,
}

impl Engine {
    #[allow(clippy::too_many_arguments)]
    fn decode_with_fallback(
        &self,
        dec: &WindowDecoder,
        features: &Tensor,
        prompt: &[u32],
        language: Option<u32>,
        opts: &Options,
        rng: &mut rand::rngs::StdRng,
        timings: &mut Timings,
    ) -> Result<WindowResult, WhisperError> {
        let mut result: Option<WindowResult> = None;
        for &t in &opts.temperatures {
            let r = dec.decode(
                features,
                prompt,
                language,
                opts.task,
                t,
                opts.beam_size,
                rng,
            )?;
            // Every attempt costs decoder time, fallbacks included.
            timings.decoded_tokens += r.tokens.len() + 1;
            timings.fallbacks += usize::from(t > 0.0);
            let mut fallback = r.compression_ratio > opts.compression_ratio_threshold
                || r.avg_logprob < opts.logprob_threshold;
            if r.no_speech_prob > opts.no_speech_threshold && r.avg_logprob < opts.logprob_threshold
            {
                fallback = false; // silence
            }
            result = Some(r);
            if !fallback {
                break;
            }
        }
        result.ok_or_else(|| WhisperError::Options("no temperatures given".into()))
    }

    /// Transcribes everything `src` yields; `source` names it in the transcript and errors.
    pub fn transcribe_stream(
        &self,
        src: &mut dyn SampleSource,
        source: &str,
        opts: &Options,
        timings: &mut Timings,
    ) -> Result<Transcript, WhisperError> {
        let dec = WindowDecoder {
            model: &self.model,
            tok: &self.tokenizer,
            rules: &self.rules,
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let sp = &self.tokenizer.sp;
        let tb = sp.timestamp_begin;
        let input_stride = N_FRAMES / self.model.dims.n_audio_ctx;
        let mut language = match (&opts.language, self.tokenizer.multilingual) {
            (Some(code), true) => {
                Some(self.tokenizer.language_token(code).ok_or_else(|| {
                    WhisperError::Options(format!("unknown language code {code:?}"))
                })?)
            }
            (None, true) => None,
            (_, false) => None,
        };
        let mut all_tokens: Vec<u32> = Vec::new();
        if let Some(p) = opts
            .initial_prompt
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            all_tokens = self.tokenizer.encode(&format!(" {p}"));
        }
        let mut prompt_reset_since = 0;
        let mut segments = Vec::new();
        let (mut buf, mut base, mut eof) = (Vec::<f32>::new(), 0usize, false);
        let mut seek = 0usize;
        loop {
            let need = seek * HOP + N_SAMPLES + N_FFT;
            while !eof && base + buf.len() < need {
                eof = !src.read(&mut buf)?;
            }
            let total = base + buf.len();
            let content_frames = if eof { total / HOP } else { usize::MAX };
            if seek >= content_frames {
                break;
            }
            let segment_size = N_FRAMES.min(content_frames - seek);
            let time_offset = (seek * HOP) as f64 / 16_000.0;
            if let Some(gate) = opts.silence_gate_dbfs {
                let from = (seek * HOP).saturating_sub(base).min(buf.len());
                let to = (from + segment_size * HOP).min(buf.len());
                if is_silent(&buf[from..to], gate) {
                    seek += segment_size;
                    timings.silent_windows += 1;
                    drop_passed(&mut buf, &mut base, seek);
                    continue;
                }
            }
            let t0 = Instant::now();
            let mel = self.mel.window(&buf, base, seek, segment_size);
            let mut mel =
                Tensor::from_vec(mel, (1, self.mel.n_mels(), N_FRAMES), self.model.device())?;
            let trimmed = opts.trim_short_window && seek == 0 && eof && segment_size < N_FRAMES;
            if trimmed {
                let frames = trimmed_frames(segment_size);
                mel = mel.narrow(2, 0, frames)?.contiguous()?;
            }
            timings.mel += t0.elapsed();
            let t1 = Instant::now();
            // On a pool thread (as the LLM's forward pass): each parallel op then wakes one
            // other thread instead of all of them while this one sleeps.
            let features = rayon::scope(|_| self.model.encode(&mel))?;
            timings.encoder += t1.elapsed();
            timings.windows += 1;
            if self.tokenizer.multilingual && language.is_none() {
                language = Some(dec.detect_language(&features)?.0);
            }
            let t2 = Instant::now();
            let r = rayon::scope(|_| {
                self.decode_with_fallback(
                    &dec,
                    &features,
                    &all_tokens[prompt_reset_since..],
                    language,
                    opts,
                    &mut rng,
                    timings,
                )
            })?;
            timings.decode += t2.elapsed();
            let skip = opts.is_no_speech(r.no_speech_prob, r.avg_logprob);
            let previous_seek = seek;
            if skip {
                seek += segment_size;
            } else {
                let toks = &r.tokens;
                let is_ts: Vec<bool> = toks.iter().map(|&t| t >= tb).collect();
                let n = toks.len();
                let single_ending = n >= 2 && !is_ts[n - 2] && is_ts[n - 1];
                let mut cuts: Vec<usize> = (1..n).filter(|&i| is_ts[i - 1] && is_ts[i]).collect();
                let mut window_segments = Vec::new();
                let pos = |t: u32| (t - tb) as f64 * 0.02;
                if !cuts.is_empty() {
                    if single_ending {
                        cuts.push(n);
                    }
                    let mut last = 0;
                    for &c in &cuts {
                        let s = &toks[last..c];
                        if let (Some(&a), Some(&b)) = (s.first(), s.last()) {
                            if a >= tb && b >= tb {
                                window_segments.push((
                                    time_offset + pos(a),
                                    time_offset + pos(b),
                                    s.to_vec(),
                                ));
                            }
                        }
                        last = c;
                    }
                    if single_ending {
                        seek += segment_size;
                    } else {
                        let last_ts = toks[last - 1].saturating_sub(tb) as usize;
                        seek += last_ts * input_stride;
                    }
                } else {
                    let mut duration = segment_size as f64 * HOP as f64 / 16_000.0;
                    if let Some(&t) = toks.iter().rev().find(|&&t| t >= tb) {
                        if t != tb {
                            duration = pos(t);
                        }
                    }
                    window_segments.push((time_offset, time_offset + duration, toks.clone()));
                    seek += segment_size;
                }
                if seek <= previous_seek {
                    // A zero-length advance would loop forever; move on like a full window.
                    seek = previous_seek + segment_size;
                }
                let content_end = time_offset + (segment_size * HOP) as f64 / 16_000.0;
                for (start, end, t) in window_segments {
                    let text = self.tokenizer.decode(&t);
                    if start == end || text.trim().is_empty() {
                        continue;
                    }
                    if trimmed && start >= content_end {
                        // In a trimmed window the decoder may repeat itself over the padding.
                        continue;
                    }
                    all_tokens.extend_from_slice(&t);
                    segments.push(Segment {
                        start,
                        end,
                        text,
                        avg_logprob: r.avg_logprob,
                        no_speech_prob: r.no_speech_prob,
                    });
                }
            }
            if !opts.condition_on_previous_text || r.temperature > 0.5 {
                prompt_reset_since = all_tokens.len();
            }
            drop_passed(&mut buf, &mut base, seek);
        }
        timings.audio_secs = (base + buf.len()) as f64 / 16_000.0;
        let text = segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<String>()
            .trim()
            .to_string();
        let language = if self.tokenizer.multilingual {
            language.and_then(|l| self.tokenizer.language_code(l).map(String::from))
        } else {
            Some("en".to_string())
        };
        Ok(Transcript {
            source: source.to_string(),
            language,
            text,
            segments,
        })
    }
}

/// Drops the samples before `seek` that the next window (and its reflect padding) can no
/// longer need; `base` is the stream position of `buf[0]`.
fn drop_passed(buf: &mut Vec<f32>, base: &mut usize, seek: usize) {
    let keep_from = (seek * HOP).saturating_sub(N_FFT);
    if keep_from > *base {
        let drop = (keep_from - *base).min(buf.len());
        buf.drain(..drop);
        *base += drop;
    }
}

/// Mel frames encoded for a clip of `content` frames when trimming: its length plus 2 s,
/// even (the second convolution has stride 2), at most one window.
fn trimmed_frames(content: usize) -> usize {
    const PAD: usize = 200;
    ((content + PAD).div_ceil(2) * 2).min(N_FRAMES)
}

#[cfg(test)]
#[path = "transcribe_tests.rs"]
mod tests;
