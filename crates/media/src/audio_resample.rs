//! Streaming sample-rate conversion of mono audio with rubato.

use crate::audio_limits::{MAX_SAMPLE_RATE, MIN_SAMPLE_RATE};
use rubato::{FftFixedIn, Resampler};

/// Input frames handed to rubato per call; large enough for FFT efficiency, small enough
/// to keep streaming memory flat.
const CHUNK_IN: usize = 4096;

/// Converts a mono stream from `from` Hz to `to` Hz, fed in arbitrary pieces.
///
/// Output is aligned with the input (rubato's filter delay is dropped) and its length is
/// exactly `ceil(n_in * to / from)`, so durations survive the conversion. Input is handed
/// to rubato straight from the caller's slice when it holds a whole block, and every block
/// is converted into one reused buffer, so a long stream allocates nothing per call.
pub struct MonoResampler {
    inner: Option<FftFixedIn<f32>>,
    /// Less than one input block, waiting for the rest.
    pending: Vec<f32>,
    /// One converted block.
    scratch: Vec<f32>,
    trim: Trim,
}

/// Drops rubato's filter delay and cuts the output at the exact converted length.
struct Trim {
    delay_left: usize,
    from: u64,
    to: u64,
    n_in: u64,
    n_out: u64,
}

impl Trim {
    fn expected_out(&self) -> u64 {
        (self.n_in * self.to).div_ceil(self.from)
    }

    fn emit(&mut self, mut block: &[f32], out: &mut Vec<f32>) {
        let skip = self.delay_left.min(block.len());
        self.delay_left -= skip;
        block = &block[skip..];
        let want = self.expected_out().saturating_sub(self.n_out) as usize;
        let take = block.len().min(want);
        out.extend_from_slice(&block[..take]);
        self.n_out += take as u64;
    }
}

impl MonoResampler {
    /// Both rates must lie in `MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE`: rubato's FFT sizes grow
    /// with the rates divided by their common divisor, so 1 Hz -> 16 kHz alone would take
    /// gigabytes.
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        for rate in [from, to] {
            if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&rate) {
                return Err(format!(
                    "invalid sample rate conversion {from} Hz -> {to} Hz \
                     (rates must be {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz)"
                ));
            }
        }
        let inner = if from == to {
            None
        } else {
            let rs = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK_IN, 2, 1)
                .map_err(|e| e.to_string())?;
            Some(rs)
        };
        let delay_left = inner.as_ref().map(|r| r.output_delay()).unwrap_or(0);
        let scratch = vec![0.0; inner.as_ref().map(|r| r.output_frames_max()).unwrap_or(0)];
        Ok(MonoResampler {
            inner,
            pending: Vec::new(),
            scratch,
            trim: Trim {
                delay_left,
                from: u64::from(from),
                to: u64::from(to),
                n_in: 0,
                n_out: 0,
            },
        })
    }

    /// Feeds samples; converted samples are appended to `out`.
    pub fn push(&mut self, mut input: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        self.trim.n_in += input.len() as u64;
        let Some(rs) = self.inner.as_mut() else {
            self.trim.n_out += input.len() as u64;
            out.extend_from_slice(input);
            return Ok(());
        };
        loop {
            let need = rs.input_frames_next();
            let written = if self.pending.is_empty() && input.len() >= need {
                let (_, n) = rs
                    .process_into_buffer(&[&input[..need]], &mut [&mut self.scratch], None)
                    .map_err(|e| e.to_string())?;
                input = &input[need..];
                n
            } else {
                let take = need.saturating_sub(self.pending.len()).min(input.len());
                self.pending.extend_from_slice(&input[..take]);
                input = &input[take..];
                if self.pending.len() < need {
                    return Ok(());
                }
                let (_, n) = rs
                    .process_into_buffer(&[&self.pending], &mut [&mut self.scratch], None)
                    .map_err(|e| e.to_string())?;
                self.pending.clear();
                n
            };
            self.trim.emit(&self.scratch[..written], out);
        }
    }

    /// Flushes what rubato still holds; call once at end of stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), String> {
        let Some(rs) = self.inner.as_mut() else {
            return Ok(());
        };
        // rubato refuses an empty channel (it pads only a non-empty one), so an empty tail
        // is passed as no input, which rubato reads as zeros.
        let tail = [&self.pending];
        let input = (!self.pending.is_empty()).then_some(&tail[..]);
        let (_, n) = rs
            .process_partial_into_buffer(input, &mut [&mut self.scratch], None)
            .map_err(|e| e.to_string())?;
        self.pending.clear();
        self.trim.emit(&self.scratch[..n], out);
        // Drain the filter delay with zeros until the expected length is reached. rubato
        // emits nothing until a whole FFT block (up to `from` + CHUNK_IN frames) has
        // arrived, and the delay is half a block, so that much input twice always suffices.
        let expected = self.trim.expected_out();
        let max_calls = (2 * (self.trim.from as usize + CHUNK_IN)).div_ceil(CHUNK_IN) + 1;
        let mut guard = 0;
        while self.trim.n_out < expected && guard < max_calls {
            let (_, n) = rs
                .process_partial_into_buffer(None::<&[&[f32]]>, &mut [&mut self.scratch], None)
                .map_err(|e| e.to_string())?;
            self.trim.emit(&self.scratch[..n], out);
            guard += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(from: u32, to: u32, x: &[f32], piece: usize) -> Vec<f32> {
        let mut r = MonoResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for c in x.chunks(piece) {
            r.push(c, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn length_and_alignment_survive_conversion() {
        let n = 44_100 * 2 + 123;
        let x: Vec<f32> = (0..n)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 44_100.0).sin())
            .collect();
        let y = convert(44_100, 16_000, &x, 1000);
        assert_eq!(y.len(), (n as u64 * 16_000).div_ceil(44_100) as usize);
        // Aligned: sample k of y matches the sine at time k/16000.
        for k in (2000..30_000).step_by(997) {
            let t = k as f32 / 16_000.0;
            let want = (2.0 * std::f32::consts::PI * 440.0 * t).sin();
            assert!((y[k] - want).abs() < 0.06, "k={k} got {} want {want}", y[k]);
        }
    }

    #[test]
    fn same_rate_is_identity() {
        let x: Vec<f32> = (0..5000).map(|i| i as f32).collect();
        assert_eq!(convert(16_000, 16_000, &x, 333), x);
    }

    #[test]
    fn upsampling_from_8k() {
        let x = vec![0.25f32; 8000];
        let y = convert(8000, 16_000, &x, 700);
        assert_eq!(y.len(), 16_000);
        assert!((y[8000] - 0.25).abs() < 0.01);
    }

    #[test]
    fn rates_outside_the_limits_are_errors() {
        for (from, to) in [(0, 16_000), (1, 16_000), (u32::MAX, 16_000), (16_000, 999)] {
            let e = MonoResampler::new(from, to).err().expect("refused");
            assert!(e.contains(&format!("{from} Hz -> {to} Hz")), "{e}");
        }
        assert!(MonoResampler::new(MAX_SAMPLE_RATE, MIN_SAMPLE_RATE).is_ok());
    }

    #[test]
    fn coprime_rates_at_the_limits_convert() {
        // No common divisor: rubato's blocks are as large as they get within the limits.
        let x = vec![0.5f32; 383_999];
        let y = convert(383_999, 16_000, &x, 50_000);
        assert_eq!(y.len(), 16_000);
        let y = convert(1_009, 16_000, &vec![0.5; 1_009], 100);
        assert_eq!(y.len(), 16_000);
        assert!((y[8000] - 0.5).abs() < 0.01);
    }
}
