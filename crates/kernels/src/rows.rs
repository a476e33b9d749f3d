//! A decoder layer's small ops on plain slices, each one pass over memory: RMS norm,
//! rotary embedding, the SiLU and GELU gates, and causal attention (optionally over a sliding
//! window) over a key/value cache. The LLM
//! runs its whole CPU forward pass on these and [`crate::quant`], with buffers it keeps
//! between tokens, so a generated token allocates no tensors.

use crate::math::{dot, exp};
use crate::softmax::softmax_in_place;
pub use half::f16;
use rayon::prelude::*;

crate::simd::multiversion! {
    /// `out = x / rms(x) * w` for each row of `x` (rows of `w.len()` values).
    pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        let n = w.len().max(1);
        for (xr, or) in x.chunks_exact(n).zip(out.chunks_exact_mut(n)) {
            let scale = 1.0 / (dot(xr, xr) / n as f32 + eps).sqrt();
            for ((o, &v), &g) in or.iter_mut().zip(xr).zip(w) {
                *o = v * scale * g;
            }
        }
    }
}

crate::simd::multiversion! {
    /// `gate = silu(gate) * up`, element by element.
    pub fn silu_mul(gate: &mut [f32], up: &[f32]) {
        for (g, &u) in gate.iter_mut().zip(up) {
            *g = *g / (1.0 + exp(-*g)) * u;
        }
    }
}

crate::simd::multiversion! {
    /// `gate = gelu(gate) * up` with GELU's tanh form (Gemma's `gelu_pytorch_tanh`, ggml's
    /// `gelu`), written as `x * sigmoid(2u)`, which equals `x * (1 + tanh(u)) / 2`.
    pub fn gelu_tanh_mul(gate: &mut [f32], up: &[f32]) {
        const C: f32 = 0.797_884_6; // sqrt(2 / pi)
        for (g, &u) in gate.iter_mut().zip(up) {
            let x = *g;
            let t = C * (x + 0.044_715 * x * x * x);
            *g = x / (1.0 + exp(-2.0 * t)) * u;
        }
    }
}

/// Rotary position embedding for heads of `head_dim`, with cosines and sines kept for the
/// positions seen so far.
pub struct Rope {
    head_dim: usize,
    inv_freq: Vec<f32>,
    /// Pairs rotate as (x[2i], x[2i+1]) (GGUF llama) rather than (x[i], x[i + d/2]) (qwen2).
    interleaved: bool,
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rope {
    pub fn new(head_dim: usize, base: f32, interleaved: bool) -> Self {
        let half = head_dim / 2;
        let inv_freq = (0..half)
            .map(|i| 1.0 / base.powf(2.0 * i as f32 / head_dim as f32))
            .collect();
        Rope {
            head_dim,
            inv_freq,
            interleaved,
            cos: Vec::new(),
            sin: Vec::new(),
        }
    }

    fn extend_to(&mut self, positions: usize) {
        let half = self.inv_freq.len();
        for p in self.cos.len() / half.max(1)..positions {
            for &f in &self.inv_freq {
                let a = p as f32 * f;
                self.cos.push(a.cos());
                self.sin.push(a.sin());
            }
        }
    }

    /// Rotates `x`: rows of `heads * head_dim` values, row `t` at position `pos + t`.
    pub fn apply(&mut self, x: &mut [f32], heads: usize, pos: usize) {
        let (d, half) = (self.head_dim, self.head_dim / 2);
        let rows = x.len() / (heads * d).max(1);
        self.extend_to(pos + rows);
        for (t, row) in x.chunks_exact_mut(heads * d).enumerate() {
            let at = (pos + t) * half;
            let (cos, sin) = (&self.cos[at..at + half], &self.sin[at..at + half]);
            for head in row.chunks_exact_mut(d) {
                for i in 0..half {
                    let (a, b) = if self.interleaved {
                        (2 * i, 2 * i + 1)
                    } else {
                        (i, i + half)
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * cos[i] - x1 * sin[i];
                    head[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}

/// The shape of a causal attention call: `heads` query heads share `kv_heads` key/value
/// heads (grouped-query attention), each of `head_dim` values; scores are scaled by `scale`
/// (usually `1 / sqrt(head_dim)`), and with `window = Some(w)` a query sees only the last `w`
/// positions up to its own (Gemma's sliding-window layers).
#[derive(Clone, Copy, Debug)]
pub struct Heads {
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    pub window: Option<usize>,
}

/// Causal attention of `q` (rows of `heads * head_dim`, row `t` at position `pos + t`) over
/// the cache `k`, `v` (rows of `kv_heads * head_dim`, positions `0..=pos + t` filled), into
/// `out` (shaped as `q`). The cache is f16, as llama.cpp's: half the memory and bandwidth of
/// f32 for a rounding of the keys and values. Query rows and heads run in parallel.
pub fn causal_attention(h: Heads, q: &[f32], k: &[f16], v: &[f16], pos: usize, out: &mut [f32]) {
    let (d, width, kv_width) = (h.head_dim, h.heads * h.head_dim, h.kv_heads * h.head_dim);
    let group = (h.heads / h.kv_heads.max(1)).max(1);
    let f16c = crate::quant::kernels().has_avx2();
    // One scores buffer per rayon task, reused for the query rows and heads it takes.
    out.par_chunks_mut(d)
        .enumerate()
        .for_each_init(Vec::new, |scores, (i, o)| {
            let (t, head) = (i / h.heads, i % h.heads);
            let seen = pos + t + 1;
            let at = Head {
                q: &q[t * width + head * d..][..d],
                kv_off: (head / group) * d,
                kv_width,
                first: h.window.map_or(0, |w| seen.saturating_sub(w)),
                seen,
                scale: h.scale,
            };
            attend_head(f16c, at, k, v, scores, o);
        });
}

/// One query head's place in the cache.
#[derive(Clone, Copy)]
struct Head<'a> {
    q: &'a [f32],
    kv_off: usize,
    kv_width: usize,
    /// The first position this query sees (past the window's start).
    first: usize,
    seen: usize,
    scale: f32,
}

crate::simd::multiversion! {
    /// One head's attention over the cache's positions `h.first..h.seen` into `o`.
    fn attend_head(
        f16c: bool,
        h: Head<'_>,
        k: &[f16],
        v: &[f16],
        scores: &mut Vec<f32>,
        o: &mut [f32],
    ) {
        let d = h.q.len();
        scores.resize(h.seen - h.first.min(h.seen), 0.0);
        for (i, score) in scores.iter_mut().enumerate() {
            let s = h.first + i;
            *score = dot_f16(f16c, h.q, &k[s * h.kv_width + h.kv_off..][..d]) * h.scale;
        }
        softmax_in_place(scores);
        o.fill(0.0);
        for (i, &p) in scores.iter().enumerate() {
            let s = h.first + i;
            add_scaled_f16(f16c, o, p, &v[s * h.kv_width + h.kv_off..][..d]);
        }
    }
}

/// `a . b`, `b` in f16; `f16c`: the CPU has AVX2, FMA and F16C.
#[inline(always)]
fn dot_f16(f16c: bool, a: &[f32], b: &[f16]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if f16c {
        // SAFETY: the caller checked the CPU's features.
        return unsafe { x86::dot_f16(a, b) };
    }
    let _ = f16c;
    a.iter().zip(b).map(|(x, y)| x * y.to_f32()).sum()
}

/// `o += p * v`, `v` in f16; `f16c` as for [`dot_f16`].
#[inline(always)]
fn add_scaled_f16(f16c: bool, o: &mut [f32], p: f32, v: &[f16]) {
    #[cfg(target_arch = "x86_64")]
    if f16c {
        // SAFETY: the caller checked the CPU's features.
        return unsafe { x86::add_scaled_f16(o, p, v) };
    }
    let _ = f16c;
    for (a, b) in o.iter_mut().zip(v) {
        *a += p * b.to_f32();
    }
}

/// f16 rows widened eight at a time by F16C (the `half` crate's slice conversion is a call
/// per row, which cost more than the arithmetic).
#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::f16;
    use std::arch::x86_64::*;

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn widen(v: &[f16], i: usize) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(v[i..i + 8].as_ptr().cast()))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_f16(a: &[f32], b: &[f16]) -> f32 {
        let n = a.len().min(b.len());
        let mut acc = _mm256_setzero_ps();
        let mut i = 0;
        while i + 8 <= n {
            acc = _mm256_fmadd_ps(_mm256_loadu_ps(a[i..i + 8].as_ptr()), widen(b, i), acc);
            i += 8;
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), acc);
        let mut total: f32 = lanes.iter().sum();
        for j in i..n {
            total += a[j] * b[j].to_f32();
        }
        total
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn add_scaled_f16(o: &mut [f32], p: f32, v: &[f16]) {
        let n = o.len().min(v.len());
        let pv = _mm256_set1_ps(p);
        let mut i = 0;
        while i + 8 <= n {
            let at = o[i..i + 8].as_mut_ptr();
            _mm256_storeu_ps(at, _mm256_fmadd_ps(pv, widen(v, i), _mm256_loadu_ps(at)));
            i += 8;
        }
        for j in i..n {
            o[j] += p * v[j].to_f32();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn values(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0) - 1.0)
            .collect()
    }

    #[test]
    fn rms_norm_and_silu_match_candle() -> candle_core::Result<()> {
        let (x, w) = (values(3 * 64, 1), values(64, 2));
        let mut ours = vec![0f32; 3 * 64];
        rms_norm(&x, &w, 1e-5, &mut ours);
        let xt = Tensor::from_vec(x.clone(), (3, 64), &Device::Cpu)?;
        let wt = Tensor::from_vec(w, 64, &Device::Cpu)?;
        let theirs = candle_nn::ops::rms_norm(&xt, &wt, 1e-5)?.flatten_all()?;
        for (a, b) in ours.iter().zip(theirs.to_vec1::<f32>()?) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
        let (mut g, u) = (values(100, 3), values(100, 4));
        let want: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        silu_mul(&mut g, &u);
        for (a, b) in g.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
        Ok(())
    }

    #[test]
    fn rope_matches_candles_both_layouts() -> candle_core::Result<()> {
        let (heads, d, rows, pos) = (3, 16, 4, 5);
        let x = values(rows * heads * d, 5);
        for interleaved in [true, false] {
            let mut ours = x.clone();
            Rope::new(d, 10_000.0, interleaved).apply(&mut ours, heads, pos);
            // candle's layout: [batch, heads, seq, d], tables [seq, d/2].
            let xt = Tensor::from_vec(x.clone(), (1, rows, heads, d), &Device::Cpu)?
                .transpose(1, 2)?
                .contiguous()?;
            let freqs: Vec<f32> = (0..d / 2)
                .map(|i| 1.0 / 10_000f32.powf(2.0 * i as f32 / d as f32))
                .collect();
            let angles: Vec<f32> = (pos..pos + rows)
                .flat_map(|p| freqs.iter().map(move |f| p as f32 * f))
                .collect();
            let a = Tensor::from_vec(angles, (rows, d / 2), &Device::Cpu)?;
            let (cos, sin) = (a.cos()?, a.sin()?);
            let theirs = if interleaved {
                candle_nn::rotary_emb::rope_i(&xt, &cos, &sin)?
            } else {
                candle_nn::rotary_emb::rope(&xt, &cos, &sin)?
            };
            let theirs = theirs.transpose(1, 2)?.flatten_all()?.to_vec1::<f32>()?;
            for (a, b) in ours.iter().zip(theirs) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "interleaved {interleaved}: {a} vs {b}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn attention_is_causal_grouped_and_windowed() {
        let (pos, rows) = (3, 2);
        let total = pos + rows;
        let q = values(rows * 32, 1);
        // The cache as f16, and the reference on the same rounded values.
        let half = |x: Vec<f32>| -> Vec<f16> { x.into_iter().map(f16::from_f32).collect() };
        let (k16, v16) = (half(values(total * 16, 2)), half(values(total * 16, 3)));
        let k: Vec<f32> = k16.iter().map(|x| x.to_f32()).collect();
        let v: Vec<f32> = v16.iter().map(|x| x.to_f32()).collect();
        for (window, scale) in [(None, 8f32.sqrt().recip()), (Some(2), 0.3), (Some(1), 0.3)] {
            let h = Heads {
                heads: 4,
                kv_heads: 2,
                head_dim: 8,
                scale,
                window,
            };
            let mut out = vec![0f32; rows * 32];
            causal_attention(h, &q, &k16, &v16, pos, &mut out);
            for t in 0..rows {
                for head in 0..4 {
                    let g = head / 2;
                    let qh = &q[t * 32 + head * 8..][..8];
                    let seen = pos + t + 1;
                    let first = window.map_or(0, |w| seen - w);
                    let s: Vec<f32> = (first..seen)
                        .map(|s| {
                            let kh = &k[s * 16 + g * 8..][..8];
                            qh.iter().zip(kh).map(|(a, b)| a * b).sum::<f32>() * scale
                        })
                        .collect();
                    let m = s.iter().copied().fold(f32::MIN, f32::max);
                    let e: Vec<f32> = s.iter().map(|x| (x - m).exp()).collect();
                    let z: f32 = e.iter().sum();
                    for i in 0..8 {
                        let want: f32 = (first..seen)
                            .map(|s| e[s - first] / z * v[s * 16 + g * 8 + i])
                            .sum();
                        let got = out[t * 32 + head * 8 + i];
                        assert!((got - want).abs() < 1e-5, "{window:?} t{t} h{head} [{i}]");
                    }
                }
            }
        }
    }

    #[test]
    fn gelu_gate_matches_the_tanh_form() {
        let (mut g, u) = (values(200, 6), values(200, 7));
        let g: Vec<f32> = g.iter_mut().map(|x| *x * 12.0).collect();
        let want: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(&x, &u)| {
                let t = (2.0 / std::f32::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
                0.5 * x * (1.0 + t.tanh()) * u
            })
            .collect();
        let mut got = g.clone();
        gelu_tanh_mul(&mut got, &u);
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }
}
