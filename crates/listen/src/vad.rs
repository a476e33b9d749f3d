//! Voice-activity endpointing on 16 kHz mono audio.
//!
//! Each frame's energy (dBFS) is compared with an adaptive noise floor: a frame is voiced when
//! it is `threshold_db` above the floor and above an absolute minimum level. The floor follows
//! quiet frames down quickly and creeps up slowly, so steady background noise (a fan, hum) is
//! learned while short speech pauses are not. An utterance ends after `hangover_ms` without a
//! voiced frame; the end point is the end of its last voiced frame. Bursts with less than
//! `min_speech_ms` of voiced audio are clicks, not speech, and are discarded.

use crate::error::ListenError;
use percept_core::AudioClip;
use std::collections::VecDeque;
use std::time::Instant;

/// Frame energies are clamped here so digital silence has a finite level.
const SILENCE_DB: f32 = -100.0;

/// Endpointing settings; times in milliseconds, levels in dB.
#[derive(Debug, Clone, PartialEq)]
pub struct VadConfig {
    /// Analysis frame length.
    pub frame_ms: u32,
    /// How far above the noise floor a frame must be to count as speech.
    pub threshold_db: f32,
    /// Frames quieter than this (dBFS) are never speech, however quiet the room.
    pub min_level_db: f32,
    /// Silence after the last voiced frame that ends an utterance.
    pub hangover_ms: u32,
    /// Voiced audio an utterance needs; shorter bursts are dropped as noise.
    pub min_speech_ms: u32,
    /// Audio kept before the first voiced frame (soft word onsets are below the threshold).
    pub pre_roll_ms: u32,
    /// An utterance this long is closed even while speech goes on (one Whisper window is 30 s).
    pub max_utterance_ms: u32,
    /// How fast the floor may rise, in dB per second of non-speech.
    pub floor_rise_db_per_s: f32,
    /// After this much silence, offer the utterance so far as a tentative one (0 = never), so
    /// transcription can start while the hangover runs out. It is confirmed when the final
    /// utterance ends at the same point.
    pub early_ms: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            frame_ms: 20,
            threshold_db: 12.0,
            min_level_db: -50.0,
            hangover_ms: 500,
            min_speech_ms: 200,
            pre_roll_ms: 200,
            max_utterance_ms: 28_000,
            floor_rise_db_per_s: 3.0,
            early_ms: 150,
        }
    }
}

impl VadConfig {
    /// Rejects settings that cannot work, naming the field.
    pub fn validate(&self) -> Result<(), ListenError> {
        let bad = |field: &'static str, reason: &str| {
            Err(ListenError::Config {
                field,
                reason: reason.to_string(),
            })
        };
        if !(5..=200).contains(&self.frame_ms) {
            return bad("frame_ms", "must be between 5 and 200");
        }
        if !self.threshold_db.is_finite() || self.threshold_db <= 0.0 {
            return bad("threshold_db", "must be a positive number of dB");
        }
        if !self.min_level_db.is_finite() || self.min_level_db > 0.0 {
            return bad("min_level_db", "must be a dBFS level at or below 0");
        }
        if self.hangover_ms < self.frame_ms {
            return bad("hangover_ms", "must be at least one frame");
        }
        if self.max_utterance_ms < self.min_speech_ms.max(self.frame_ms) * 2 {
            return bad("max_utterance_ms", "must be at least twice min_speech_ms");
        }
        if !self.floor_rise_db_per_s.is_finite() || self.floor_rise_db_per_s < 0.0 {
            return bad("floor_rise_db_per_s", "must be 0 or more");
        }
        if self.early_ms >= self.hangover_ms && self.early_ms != 0 {
            return bad(
                "early_ms",
                "must be shorter than hangover_ms (or 0 for off)",
            );
        }
        Ok(())
    }
}

/// One endpointed stretch of speech at 16 kHz.
#[derive(Debug, Clone, PartialEq)]
pub struct Utterance {
    /// 0, 1, 2... in the order the VAD closed them (dropped ones leave gaps downstream).
    pub index: u64,
    /// Stream time of the first sample kept (pre-roll included), seconds.
    pub start_s: f64,
    /// Stream time of the end point: the end of the last voiced frame, seconds.
    pub end_s: f64,
    /// Stream time at which the VAD closed it (end point plus hangover), seconds.
    pub decided_s: f64,
    /// Closed by `max_utterance_ms` while speech was still going on.
    pub cut: bool,
    /// Speech paused for `early_ms` but the hangover has not run out: the final utterance
    /// (same index) may still grow. Same `start_s`/`end_s` in the final means same speech.
    pub tentative: bool,
    /// Mono samples at [`percept_media::SPEECH_RATE`], pre-roll and hangover included.
    pub samples: Vec<f32>,
    /// Wall-clock moment of the end point when the source is live (set by the front end).
    pub end_at: Option<Instant>,
    /// Wall-clock moment the front end closed it (set by the front end).
    pub closed_at: Option<Instant>,
}

impl Utterance {
    pub fn to_clip(&self) -> AudioClip {
        AudioClip {
            source: format!(
                "utterance {} ({:.2}-{:.2} s)",
                self.index, self.start_s, self.end_s
            ),
            sample_rate: percept_media::SPEECH_RATE,
            samples: self.samples.clone(),
        }
    }
}

struct Active {
    start: u64,
    last_voiced_end: u64,
    voiced: u64,
    samples: Vec<f32>,
}

/// The endpointer; feed it samples in any piece sizes.
pub struct Vad {
    cfg: VadConfig,
    rate: u32,
    frame_len: usize,
    floor_db: Option<f32>,
    partial: Vec<f32>,
    pre_roll: VecDeque<f32>,
    active: Option<Active>,
    /// Stream position (samples) of the next whole frame.
    pos: u64,
    next_index: u64,
}

impl Vad {
    pub fn new(cfg: VadConfig, rate: u32) -> Result<Self, ListenError> {
        cfg.validate()?;
        if rate == 0 {
            return Err(ListenError::Config {
                field: "sample_rate",
                reason: "must not be 0".into(),
            });
        }
        let frame_len = (rate as u64 * cfg.frame_ms as u64 / 1000).max(1) as usize;
        Ok(Vad {
            cfg,
            rate,
            frame_len,
            floor_db: None,
            partial: Vec::with_capacity(frame_len),
            pre_roll: VecDeque::new(),
            active: None,
            pos: 0,
            next_index: 0,
        })
    }

    /// The current noise floor estimate (dBFS), once a frame has been seen.
    pub fn noise_floor_db(&self) -> Option<f32> {
        self.floor_db
    }

    /// Stream time consumed so far, seconds.
    pub fn stream_secs(&self) -> f64 {
        (self.pos + self.partial.len() as u64) as f64 / self.rate as f64
    }

    pub fn in_speech(&self) -> bool {
        self.active.is_some()
    }

    /// Feeds samples; closed utterances are appended to `out`.
    pub fn push(&mut self, mut samples: &[f32], out: &mut Vec<Utterance>) {
        while !samples.is_empty() {
            let take = (self.frame_len - self.partial.len()).min(samples.len());
            self.partial.extend_from_slice(&samples[..take]);
            samples = &samples[take..];
            if self.partial.len() == self.frame_len {
                let frame = std::mem::take(&mut self.partial);
                if let Some(u) = self.frame(&frame) {
                    out.push(u);
                }
                self.partial = frame;
                self.partial.clear();
            }
        }
    }

    /// End of stream: closes an utterance in progress if it holds enough speech.
    pub fn finish(&mut self) -> Option<Utterance> {
        let partial = std::mem::take(&mut self.partial);
        if let Some(a) = self.active.as_mut() {
            a.samples.extend_from_slice(&partial);
        }
        self.pos += partial.len() as u64;
        let a = self.active.take()?;
        self.close(a, false)
    }

    /// Throws away the utterance in progress (its audio has a hole) and skips `lost` samples
    /// of stream time. Returns whether an utterance was discarded.
    pub fn discard(&mut self, lost: u64) -> bool {
        let had = self.active.take().is_some();
        self.pre_roll.clear();
        self.pos += self.partial.len() as u64 + lost;
        self.partial.clear();
        had
    }

    fn secs(&self, samples: u64) -> f64 {
        samples as f64 / self.rate as f64
    }

    fn ms_to_samples(&self, ms: u32) -> u64 {
        self.rate as u64 * ms as u64 / 1000
    }

    fn frame(&mut self, frame: &[f32]) -> Option<Utterance> {
        let hangover = self.ms_to_samples(self.cfg.hangover_ms);
        let early = self.ms_to_samples(self.cfg.early_ms);
        let min_speech = self.ms_to_samples(self.cfg.min_speech_ms);
        let rate = self.rate as f64;
        let max_len = self.ms_to_samples(self.cfg.max_utterance_ms);
        let energy = frame_db(frame);
        let floor = *self.floor_db.get_or_insert(energy);
        let voiced = energy > (floor + self.cfg.threshold_db).max(self.cfg.min_level_db);
        self.update_floor(energy);
        let start = self.pos;
        let end = start + frame.len() as u64;
        self.pos = end;

        let Some(a) = self.active.as_mut() else {
            if voiced {
                let mut samples: Vec<f32> = self.pre_roll.drain(..).collect();
                let kept = samples.len() as u64;
                samples.extend_from_slice(frame);
                self.active = Some(Active {
                    start: start - kept,
                    last_voiced_end: end,
                    voiced: frame.len() as u64,
                    samples,
                });
            } else {
                self.pre_roll.extend(frame);
                let keep = self.ms_to_samples(self.cfg.pre_roll_ms) as usize;
                while self.pre_roll.len() > keep {
                    self.pre_roll.pop_front();
                }
            }
            return None;
        };
        a.samples.extend_from_slice(frame);
        if voiced {
            a.last_voiced_end = end;
            a.voiced += frame.len() as u64;
        }
        let silent_for = end - a.last_voiced_end;
        if silent_for >= hangover {
            let a = self.active.take()?;
            return self.close(a, false);
        }
        if a.samples.len() as u64 >= max_len {
            let mut a = self.active.take()?;
            a.last_voiced_end = end;
            return self.close(a, true);
        }
        // The first frame at which the pause reaches `early_ms`: once per pause.
        let frame_len = frame.len() as u64;
        if early > 0
            && silent_for >= early
            && silent_for < early + frame_len
            && a.voiced >= min_speech
        {
            return Some(Utterance {
                index: self.next_index,
                start_s: a.start as f64 / rate,
                end_s: a.last_voiced_end as f64 / rate,
                decided_s: end as f64 / rate,
                cut: false,
                tentative: true,
                samples: a.samples.clone(),
                end_at: None,
                closed_at: None,
            });
        }
        None
    }

    fn update_floor(&mut self, energy: f32) {
        let Some(floor) = self.floor_db.as_mut() else {
            return;
        };
        if energy < *floor {
            // Fall quickly: a quiet frame is strong evidence of the true floor.
            *floor += (energy - *floor) * 0.3;
        } else {
            // Rise slowly, even inside speech: words are short next to the seconds this
            // takes, while a lasting louder background (a fan switched on) is learned.
            let step = self.cfg.floor_rise_db_per_s * self.cfg.frame_ms as f32 / 1000.0;
            *floor += (energy - *floor).min(step);
        }
    }

    fn close(&mut self, a: Active, cut: bool) -> Option<Utterance> {
        self.pre_roll.clear();
        if !cut && a.voiced < self.ms_to_samples(self.cfg.min_speech_ms) {
            return None;
        }
        let index = self.next_index;
        self.next_index += 1;
        Some(Utterance {
            index,
            start_s: self.secs(a.start),
            end_s: self.secs(a.last_voiced_end),
            decided_s: self.secs(self.pos),
            cut,
            tentative: false,
            samples: a.samples,
            end_at: None,
            closed_at: None,
        })
    }
}

/// Mean-square level of a frame in dBFS (full scale = 1.0).
pub fn frame_db(frame: &[f32]) -> f32 {
    if frame.is_empty() {
        return SILENCE_DB;
    }
    let ms = frame.iter().map(|s| s * s).sum::<f32>() / frame.len() as f32;
    (10.0 * ms.max(1e-10).log10()).max(SILENCE_DB)
}

#[cfg(test)]
#[path = "vad_tests.rs"]
mod tests;
