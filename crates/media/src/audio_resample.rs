//! Streaming sample-rate conversion of mono audio with rubato.

use rubato::{FftFixedIn, Resampler};

/// Input frames handed to rubato per call; large enough for FFT efficiency, small enough
/// to keep streaming memory flat.
const CHUNK_IN: usize = 4096;

/// Converts a mono stream from `from` Hz to `to` Hz, fed in arbitrary pieces.
///
/// Output is aligned with the input (rubato's filter delay is dropped) and its length is
/// exactly `ceil(n_in * to / from)`, so durations survive the conversion.
pub struct MonoResampler {
    inner: Option<FftFixedIn<f32>>,
    pending: Vec<f32>,
    delay_left: usize,
    from: u64,
    to: u64,
    n_in: u64,
    n_out: u64,
}

impl MonoResampler {
    pub fn new(from: u32, to: u32) -> Result<Self, String> {
        if from == 0 || to == 0 {
            return Err(format!(
                "invalid sample rate conversion {from} Hz -> {to} Hz"
            ));
        }
        let inner = if from == to {
            None
        } else {
            let rs = FftFixedIn::<f32>::new(from as usize, to as usize, CHUNK_IN, 2, 1)
                .map_err(|e| e.to_string())?;
            Some(rs)
        };
        let delay_left = inner.as_ref().map(|r| r.output_delay()).unwrap_or(0);
        Ok(MonoResampler {
            inner,
            pending: Vec::new(),
            delay_left,
            from: from as u64,
            to: to as u64,
            n_in: 0,
            n_out: 0,
        })
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

    fn expected_out(&self) -> u64 {
        (self.n_in * self.to).div_ceil(self.from)
    }

    /// Feeds samples; converted samples are appended to `out`.
    pub fn push(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), String> {
        self.n_in += input.len() as u64;
        if self.inner.is_none() {
            self.n_out += input.len() as u64;
            out.extend_from_slice(input);
            return Ok(());
        }
        self.pending.extend_from_slice(input);
        let mut start = 0;
        let mut blocks = Vec::new();
        if let Some(rs) = self.inner.as_mut() {
            loop {
                let need = rs.input_frames_next();
                if self.pending.len() - start < need {
                    break;
                }
                let block = rs
                    .process(&[&self.pending[start..start + need]], None)
                    .map_err(|e| e.to_string())?;
                start += need;
                blocks.push(block.into_iter().next().unwrap_or_default());
            }
        }
        self.pending.drain(..start);
        for b in blocks {
            self.emit(&b, out);
        }
        Ok(())
    }

    /// Flushes what rubato still holds; call once at end of stream.
    pub fn finish(&mut self, out: &mut Vec<f32>) -> Result<(), String> {
        let expected = self.expected_out();
        let Some(rs) = self.inner.as_mut() else {
            return Ok(());
        };
        let mut blocks = Vec::new();
        let tail = std::mem::take(&mut self.pending);
        let first = rs
            .process_partial(Some(&[&tail[..]]), None)
            .map_err(|e| e.to_string())?;
        blocks.push(first.into_iter().next().unwrap_or_default());
        // Drain the filter delay with empty input until the expected length is reached.
        let mut guard = 0;
        let mut produced: u64 = self.n_out + blocks[0].len() as u64;
        while produced < expected + self.delay_left as u64 && guard < 64 {
            let b = rs
                .process_partial::<&[f32]>(None, None)
                .map_err(|e| e.to_string())?;
            let b = b.into_iter().next().unwrap_or_default();
            produced += b.len() as u64;
            blocks.push(b);
            guard += 1;
        }
        for b in blocks {
            let want = expected.saturating_sub(self.n_out) as usize;
            let skip = self.delay_left.min(b.len());
            self.delay_left -= skip;
            let b = &b[skip..];
            let take = b.len().min(want);
            out.extend_from_slice(&b[..take]);
            self.n_out += take as u64;
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
    fn zero_rate_is_an_error() {
        assert!(MonoResampler::new(0, 16_000).is_err());
    }
}
