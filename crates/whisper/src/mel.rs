//! Whisper's log-mel spectrogram: 25 ms periodic-Hann frames every 10 ms at 16 kHz, power
//! spectrum, Slaney-style mel filterbank (as librosa builds the one Whisper ships), log10,
//! clamp to 8 below the maximum, then scale to about [-1, 1].

use realfft::{RealFftPlanner, RealToComplex};
use std::sync::Arc;

pub const SAMPLE_RATE: usize = 16_000;
pub const N_FFT: usize = 400;
pub const HOP: usize = 160;
/// Frames in one 30 s window.
pub const N_FRAMES: usize = 3000;
pub const N_SAMPLES: usize = N_FRAMES * HOP;

fn hz_to_mel(f: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel) = (1000.0, 1000.0 / f_sp);
    let logstep = 6.4f64.ln() / 27.0;
    if f >= min_log_hz {
        min_log_mel + (f / min_log_hz).ln() / logstep
    } else {
        f / f_sp
    }
}

fn mel_to_hz(m: f64) -> f64 {
    let f_sp = 200.0 / 3.0;
    let (min_log_hz, min_log_mel) = (1000.0, 1000.0 / f_sp);
    let logstep = 6.4f64.ln() / 27.0;
    if m >= min_log_mel {
        min_log_hz * (logstep * (m - min_log_mel)).exp()
    } else {
        f_sp * m
    }
}

/// `n_mels` x (N_FFT/2 + 1) filterbank, row-major, equal to librosa's
/// `filters.mel(sr=16000, n_fft=400, n_mels=n_mels)` (Slaney scale and norm).
pub fn mel_filters(n_mels: usize) -> Vec<f32> {
    let n_bins = N_FFT / 2 + 1;
    let fmax = SAMPLE_RATE as f64 / 2.0;
    let fft_freqs: Vec<f64> = (0..n_bins)
        .map(|i| i as f64 * fmax / (n_bins - 1) as f64)
        .collect();
    let (lo, hi) = (hz_to_mel(0.0), hz_to_mel(fmax));
    let mel_f: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(lo + (hi - lo) * i as f64 / (n_mels + 1) as f64))
        .collect();
    let mut w = vec![0f32; n_mels * n_bins];
    for m in 0..n_mels {
        let (f0, f1, f2) = (mel_f[m], mel_f[m + 1], mel_f[m + 2]);
        let enorm = 2.0 / (f2 - f0);
        for (b, &f) in fft_freqs.iter().enumerate() {
            let lower = (f - f0) / (f1 - f0);
            let upper = (f2 - f) / (f2 - f1);
            w[m * n_bins + b] = (lower.min(upper).max(0.0) * enorm) as f32;
        }
    }
    w
}

/// Reusable spectrogram computer for one mel size.
pub struct MelSpec {
    n_mels: usize,
    filters: Vec<f32>,
    window: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl MelSpec {
    pub fn new(n_mels: usize) -> Self {
        let window = (0..N_FFT)
            .map(|i| {
                let x = 2.0 * std::f64::consts::PI * i as f64 / N_FFT as f64;
                (0.5 - 0.5 * x.cos()) as f32
            })
            .collect();
        MelSpec {
            n_mels,
            filters: mel_filters(n_mels),
            window,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
        }
    }

    pub fn n_mels(&self) -> usize {
        self.n_mels
    }

    /// Log-mel of one 30 s window, (n_mels, N_FRAMES) row-major, for frames
    /// `first_frame..first_frame + N_FRAMES` of the whole recording. Only the first `valid`
    /// frames hold audio; the rest are zeros, as Whisper pads a short segment.
    ///
    /// `audio` holds the recording's samples from absolute index `base` on; samples past its
    /// end are silence (Whisper pads with 30 s of zeros) and the start is reflect-padded,
    /// so frames match a spectrogram of the whole file.
    pub fn window(&self, audio: &[f32], base: usize, first_frame: usize, valid: usize) -> Vec<f32> {
        let valid = valid.min(N_FRAMES);
        let n_bins = N_FFT / 2 + 1;
        let half = (N_FFT / 2) as isize;
        let at = |abs: isize| -> f32 {
            // Reflect at the recording's first sample, zero after its end.
            let abs = if abs < 0 { -abs } else { abs } as usize;
            match abs.checked_sub(base) {
                Some(i) => audio.get(i).copied().unwrap_or(0.0),
                None => 0.0,
            }
        };
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0f32; n_bins];
        let mut out = vec![0f32; self.n_mels * N_FRAMES];
        for f in 0..valid {
            let centre = ((first_frame + f) * HOP) as isize;
            let start = centre - half;
            let end_abs = (start + N_FFT as isize) as usize;
            if start >= base as isize && end_abs <= base + audio.len() {
                let s = start as usize - base;
                for (i, x) in input.iter_mut().enumerate() {
                    *x = audio[s + i] * self.window[i];
                }
            } else {
                for (i, x) in input.iter_mut().enumerate() {
                    *x = at(start + i as isize) * self.window[i];
                }
            }
            if self
                .fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .is_err()
            {
                continue;
            }
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for m in 0..self.n_mels {
                let row = &self.filters[m * n_bins..(m + 1) * n_bins];
                let e: f32 = row.iter().zip(&power).map(|(a, b)| a * b).sum();
                out[m * N_FRAMES + f] = e.max(1e-10).log10();
            }
        }
        // Whisper clamps against the whole recording's maximum; a window's own maximum is
        // the streaming stand-in (identical for recordings up to 30 s).
        let mut max = f32::NEG_INFINITY;
        for row in out.chunks(N_FRAMES) {
            max = row[..valid].iter().copied().fold(max, f32::max);
        }
        for row in out.chunks_mut(N_FRAMES) {
            for v in row[..valid].iter_mut() {
                *v = (v.max(max - 8.0) + 4.0) / 4.0;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filterbank_matches_openai_mel_filters_npz() {
        let npz = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/whisper/mel_filters.npz"
        );
        let arrays = candle_core::npy::NpzTensors::new(npz).expect("open mel_filters.npz");
        for n in [80usize, 128] {
            let t = arrays
                .get(&format!("mel_{n}"))
                .unwrap()
                .expect("array present");
            let want: Vec<f32> = t
                .to_dtype(candle_core::DType::F32)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = mel_filters(n);
            assert_eq!(got.len(), want.len());
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 1e-6, "mel_{n}: max abs diff {worst}");
        }
    }

    #[test]
    fn silence_is_flat_and_a_tone_lights_its_bin() {
        let spec = MelSpec::new(80);
        let silence = spec.window(&[], 0, 0, N_FRAMES);
        assert!(silence.iter().all(|&v| (v - silence[0]).abs() < 1e-6));
        let tone: Vec<f32> = (0..N_SAMPLES)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin())
            .collect();
        let m = spec.window(&tone, 0, 0, N_FRAMES);
        let frame = 1500;
        let best = (0..80)
            .max_by(|&a, &b| m[a * N_FRAMES + frame].total_cmp(&m[b * N_FRAMES + frame]))
            .unwrap();
        let centre_hz = mel_to_hz(hz_to_mel(0.0) + (hz_to_mel(8000.0)) * (best + 1) as f64 / 81.0);
        assert!(
            (centre_hz - 1000.0).abs() < 120.0,
            "bin {best} at {centre_hz} Hz"
        );
    }

    #[test]
    fn window_offset_equals_slice_of_longer_audio() {
        let spec = MelSpec::new(80);
        let x: Vec<f32> = (0..N_SAMPLES + 48_000)
            .map(|i| ((i as f32) * 0.013).sin() * ((i / 4000) as f32 % 3.0))
            .collect();
        let base = 300 * HOP - 200;
        let a = spec.window(&x, 0, 300, 2500);
        let b = spec.window(&x[base..], base, 300, 2500);
        assert!(a[2600] == 0.0 && a[100] != 0.0);
        assert_eq!(a, b);
    }
}
