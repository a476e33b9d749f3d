//! Activations quantised to 8 bits once per input and shared by every matrix that reads
//! them (a layer's Q, K and V projections, or its gate and up projections).
//!
//! Two encodings, as llama.cpp's: per 32 values with a scale and the scaled sum (`Q8_0`/
//! `Q8_1`, for the 32-weight formats), and per 256 values with a scale and sums per 16
//! (`Q8_K`, for the k-quants). Each is made on first use. llama.cpp stores the per-32 scale
//! and sum as f16 because its blocks have that layout; these never leave memory, so they
//! stay f32, one rounding closer to the unquantised product (it moves SmolLM2's logits by
//! up to 0.3, enough to settle near-ties such as its first answer token to "What is the
//! capital of France?" the way the unquantised model does).

use std::sync::OnceLock;

/// One row quantised per 32: scales, scaled sums `d * sum(q)` and quants.
#[derive(Clone, Copy)]
pub(crate) struct Act32<'a> {
    pub d: &'a [f32],
    pub s: &'a [f32],
    pub q: &'a [i8],
}

/// One row quantised per 256: scales, sums of quants per 16, and quants.
#[derive(Clone, Copy)]
pub(crate) struct Act256<'a> {
    pub d: &'a [f32],
    pub bsums: &'a [i16],
    pub q: &'a [i8],
}

#[derive(Default)]
struct Enc32 {
    d: Vec<f32>,
    s: Vec<f32>,
    q: Vec<i8>,
}

#[derive(Default)]
struct Enc256 {
    d: Vec<f32>,
    bsums: Vec<i16>,
    q: Vec<i8>,
}

/// `rows` input vectors of `k` values, ready for quantised matrix products.
#[derive(Default)]
pub struct QInput {
    x: Vec<f32>,
    rows: usize,
    k: usize,
    e32: OnceLock<Enc32>,
    e256: OnceLock<Enc256>,
}

impl QInput {
    pub fn new(x: &[f32], k: usize) -> Self {
        let mut q = QInput::default();
        q.set(x, k);
        q
    }

    /// Takes new values (`x.len() / k` rows), reusing the input buffer; the encodings are
    /// made again on first use.
    pub fn set(&mut self, x: &[f32], k: usize) {
        self.k = k;
        self.rows = x.len().checked_div(k).unwrap_or(0);
        self.x.clear();
        self.x.extend_from_slice(&x[..self.rows * k]);
        self.e32.take();
        self.e256.take();
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub(crate) fn row32(&self, r: usize) -> Act32<'_> {
        let e = self
            .e32
            .get_or_init(|| by_rows(&self.x, self.k, quantize32));
        let (b, k) = (self.k / 32, self.k);
        Act32 {
            d: &e.d[r * b..(r + 1) * b],
            s: &e.s[r * b..(r + 1) * b],
            q: &e.q[r * k..(r + 1) * k],
        }
    }

    pub(crate) fn row256(&self, r: usize) -> Act256<'_> {
        let e = self
            .e256
            .get_or_init(|| by_rows(&self.x, self.k, quantize256));
        let (b, k) = (self.k / 256, self.k);
        Act256 {
            d: &e.d[r * b..(r + 1) * b],
            bsums: &e.bsums[r * 16 * b..(r + 1) * 16 * b],
            q: &e.q[r * k..(r + 1) * k],
        }
    }

    /// Makes the encoding `per_256` (or per 32) now, so threads reading it later do not
    /// wait on one another.
    pub(crate) fn prepare(&self, per_256: bool) {
        if per_256 {
            self.row256(0);
        } else {
            self.row32(0);
        }
    }
}

/// Encodes `x` (rows of `k`) with `f`: a prompt's rows on the pool's threads, joined in order.
fn by_rows<E: Join + Send>(x: &[f32], k: usize, f: impl Fn(&[f32]) -> E + Sync) -> E {
    use rayon::prelude::*;
    let rows = x.len().checked_div(k).unwrap_or(0);
    let threads = rayon::current_num_threads().max(1);
    // Below about 64 K values a thread's wake-up costs more than the work.
    if threads == 1 || rows < 2 || x.len() < 1 << 16 {
        return f(x);
    }
    let per = rows.div_ceil(threads) * k;
    let parts: Vec<E> = x.par_chunks(per).map(&f).collect();
    let mut parts = parts.into_iter();
    let mut all = parts.next().unwrap_or_else(|| f(&[]));
    for p in parts {
        all.join(p);
    }
    all
}

trait Join {
    fn join(&mut self, next: Self);
}

impl Join for Enc32 {
    fn join(&mut self, next: Self) {
        self.d.extend(next.d);
        self.s.extend(next.s);
        self.q.extend(next.q);
    }
}

impl Join for Enc256 {
    fn join(&mut self, next: Self) {
        self.d.extend(next.d);
        self.bsums.extend(next.bsums);
        self.q.extend(next.q);
    }
}

fn quantize32(x: &[f32]) -> Enc32 {
    let mut e = Enc32 {
        q: vec![0; x.len()],
        ..Enc32::default()
    };
    let block: fn(&[f32], &mut [i8]) -> (f32, i32) = match () {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: the AVX2 kernels are only chosen where the CPU has AVX2, FMA and F16C.
        () if super::kernels().has_avx2() => |xs, qs| unsafe { super::avx2::quantize32(xs, qs) },
        () => quantize_block32,
    };
    for (xs, qs) in x.chunks_exact(32).zip(e.q.chunks_exact_mut(32)) {
        let (d, sum) = block(xs, qs);
        e.d.push(d);
        e.s.push(d * sum as f32);
    }
    e
}

/// One block of 32: its scale and the sum of its quants.
fn quantize_block32(xs: &[f32], qs: &mut [i8]) -> (f32, i32) {
    let amax = xs.iter().fold(0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut sum = 0i32;
    // Ties to even, as the AVX2 path's conversion rounds.
    for (q, &v) in qs.iter_mut().zip(xs) {
        *q = (v * id).round_ties_even() as i8;
        sum += *q as i32;
    }
    (d, sum)
}

crate::simd::multiversion! {
    // Compiled for AVX2 where present so that rounding is one instruction, not a call to
    // libm's `rintf` per value (2% of Qwen's decoding time in a portable build).
    fn quantize256(x: &[f32]) -> Enc256 {
        let mut e = Enc256 {
            q: vec![0; x.len()],
            ..Enc256::default()
        };
        for (xs, qs) in x.chunks_exact(256).zip(e.q.chunks_exact_mut(256)) {
            // The value of largest magnitude, with its sign: it maps to -127 exactly.
            let max = xs
                .iter()
                .copied()
                .fold(0f32, |m, v| if v.abs() > m.abs() { v } else { m });
            if max == 0.0 {
                e.d.push(0.0);
                e.bsums.extend([0; 16]);
                continue;
            }
            let iscale = -127.0 / max;
            for (q, &v) in qs.iter_mut().zip(xs) {
                *q = (iscale * v).round_ties_even().min(127.0) as i8;
            }
            for part in qs.chunks_exact(16) {
                e.bsums.push(part.iter().map(|&q| q as i16).sum());
            }
            e.d.push(1.0 / iscale);
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_give_back_the_values() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 9.0)
            .collect();
        let q = QInput::new(&x, 256);
        assert_eq!(q.rows(), 2);
        for r in 0..2 {
            let (a, b) = (q.row32(r), q.row256(r));
            for i in 0..256 {
                let v = x[256 * r + i];
                assert!((a.d[i / 32] * a.q[i] as f32 - v).abs() <= a.d[i / 32] * 0.51 + 1e-3);
                assert!((b.d[i / 256] * b.q[i] as f32 - v).abs() <= b.d[0].abs() * 0.51);
            }
            let sum: i32 = b.q[..16].iter().map(|&v| v as i32).sum();
            assert_eq!(b.bsums[0] as i32, sum);
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_blocks_quantise_as_the_scalar_code() {
        if !crate::quant::kernels().has_avx2() {
            return;
        }
        // Ties (x.5 with a scale of 1), zeros, and spread values of both signs.
        let blocks: [Vec<f32>; 3] = [
            (0..31).map(|i| i as f32 - 14.5).chain([-127.0]).collect(),
            vec![0.0; 32],
            (0..32)
                .map(|i| ((i * 37 % 29) as f32 - 14.0) * 0.37)
                .collect(),
        ];
        for xs in &blocks {
            let (mut a, mut b) = ([0i8; 32], [0i8; 32]);
            let want = quantize_block32(xs, &mut a);
            // SAFETY: checked above that the CPU has AVX2.
            let got = unsafe { crate::quant::avx2::quantize32(xs, &mut b) };
            assert_eq!((got, b), (want, a), "{xs:?}");
        }
    }

    #[test]
    fn zeros_quantise_to_zeros() {
        let q = QInput::new(&[0.0; 256], 256);
        assert!(q.row32(0).q.iter().all(|&v| v == 0));
        assert_eq!(q.row256(0).d, &[0.0]);
    }
}
