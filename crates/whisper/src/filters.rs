//! Logit rules applied before each token is chosen, following Whisper's reference decoder:
//! suppress blanks at the start, suppress non-speech and control tokens, and keep timestamps
//! paired, non-decreasing and preferred when their total probability dominates.

use crate::tokens::Specials;

pub struct LogitRules {
    pub suppress: Vec<u32>,
    pub blank: Vec<u32>,
    pub sp: Specials,
    pub timestamps: bool,
    /// Latest allowed first timestamp, in 20 ms steps (Whisper: 1 s).
    pub max_initial_timestamp: u32,
}

fn mask(logits: &mut [f32], range: std::ops::Range<usize>) {
    let end = range.end.min(logits.len());
    let start = range.start.min(end);
    for v in &mut logits[start..end] {
        *v = f32::NEG_INFINITY;
    }
}

impl LogitRules {
    /// `sampled`: tokens chosen so far in this window (after the prompt and start tokens).
    pub fn apply(&self, logits: &mut [f32], sampled: &[u32]) {
        let neg = f32::NEG_INFINITY;
        if sampled.is_empty() {
            for &t in &self.blank {
                if let Some(v) = logits.get_mut(t as usize) {
                    *v = neg;
                }
            }
        }
        for &t in &self.suppress {
            if let Some(v) = logits.get_mut(t as usize) {
                *v = neg;
            }
        }
        if !self.timestamps {
            return;
        }
        let tb = self.sp.timestamp_begin;
        let tbu = tb as usize;
        let eot = self.sp.eot as usize;
        let n = logits.len();
        if let Some(v) = logits.get_mut(self.sp.no_timestamps as usize) {
            *v = neg;
        }
        let is_ts = |t: &u32| *t >= tb;
        let last_ts = sampled.last().is_some_and(is_ts);
        let penult_ts = sampled.len() < 2 || is_ts(&sampled[sampled.len() - 2]);
        if last_ts {
            if penult_ts {
                mask(logits, tbu..n);
            } else {
                mask(logits, 0..eot);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|t| is_ts(t)) {
            // Timestamps never go back, and a closed segment cannot be empty.
            let upto = if last_ts && !penult_ts {
                last
            } else {
                last + 1
            };
            mask(logits, tbu..upto as usize);
        }
        if sampled.is_empty() {
            mask(logits, 0..tbu);
            mask(logits, tbu + self.max_initial_timestamp as usize + 1..n);
        }
        if tbu < n {
            let (text, ts) = logits.split_at(tbu);
            let max_text = text.iter().copied().fold(neg, f32::max);
            let m = ts.iter().copied().fold(neg, f32::max);
            if m > neg {
                let lse = m + ts.iter().map(|&v| (v - m).exp()).sum::<f32>().ln();
                if lse > max_text {
                    mask(logits, 0..tbu);
                }
            }
        }
    }
}

/// log-softmax of one row.
pub fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + logits.iter().map(|&v| (v - m).exp()).sum::<f32>().ln();
    logits.iter().map(|&v| v - lse).collect()
}

/// zlib compression ratio of the text; high values mean repetitive text (a decoding loop).
pub fn compression_ratio(text: &str) -> f64 {
    use flate2::{write::ZlibEncoder, Compression};
    use std::io::Write;
    let bytes = text.as_bytes();
    if bytes.is_empty() {
        return 0.0;
    }
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    if e.write_all(bytes).is_err() {
        return 0.0;
    }
    match e.finish() {
        Ok(c) if !c.is_empty() => bytes.len() as f64 / c.len() as f64,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> LogitRules {
        LogitRules {
            suppress: vec![3],
            blank: vec![1, 10],
            sp: Specials {
                eot: 10,
                sot: 11,
                translate: 12,
                transcribe: 13,
                sot_lm: 14,
                sot_prev: 15,
                no_speech: 16,
                no_timestamps: 17,
                timestamp_begin: 18,
                languages: vec![],
            },
            timestamps: true,
            max_initial_timestamp: 2,
        }
    }

    #[test]
    fn first_token_is_an_early_timestamp() {
        let mut l = vec![0f32; 30];
        rules().apply(&mut l, &[]);
        let allowed: Vec<usize> = (0..30).filter(|&i| l[i].is_finite()).collect();
        assert_eq!(allowed, vec![18, 19, 20]);
    }

    #[test]
    fn timestamps_pair_up_and_never_decrease() {
        let r = rules();
        let mut l = vec![0f32; 30];
        l[5] = 10.0;
        r.apply(&mut l, &[20, 5, 22]);
        // After a lone timestamp: text is banned, timestamps from 22 on (or eot) allowed.
        assert!(l[5].is_infinite() && l[21].is_infinite() && l[22].is_finite());
        let mut l = vec![0f32; 30];
        l[5] = 10.0;
        r.apply(&mut l, &[20, 5, 22, 22]);
        assert!(l[5].is_finite() && l[25].is_infinite());
    }

    #[test]
    fn compression_ratio_flags_loops() {
        let looped = "the same words again and again ".repeat(20);
        assert!(compression_ratio(&looped) > 2.4);
        assert!(
            compression_ratio(
                "And so my fellow Americans, ask not what your country can do for you"
            ) < 2.4
        );
    }
}
