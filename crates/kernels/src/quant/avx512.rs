//! AVX-512 VNNI products for prompts (many input rows), one kernel for every block format.
//!
//! A task first decodes its band of weight rows into a common form: signed byte quants, a
//! float scale and an integer start per four quants (one 32-bit lane of `vpdpbusd`), and per
//! 32 quants the min that meets the activations' per-32 sums. The band then meets the prompt's rows
//! four rows by four tokens at a time, 64 quants per instruction: with the decoding paid
//! once per band rather than once per four tokens, each 64 products cost a `vpdpbusd`, a
//! conversion and two float operations.
//!
//! `vpdpbusd` multiplies unsigned by signed bytes, so the activations go in shifted by 128
//! (`q + 128`) and the weights as they are; each lane's sum starts from `-128 * sum(w)`
//! over its four weights (kept with the band), which takes the shift back out exactly, in
//! integers. Formats with a min (Q4_1, Q5_1, Q4_K, Q5_K) add `min * sum(y)` per 32 at the
//! end. The k-quants meet activations quantised per 32 here (per 256 in decoding), one
//! rounding closer to the float product.
//!
//! Every function is `unsafe` for one reason: the CPU must have AVX-512 F, BW, VL and VNNI
//! with AVX2, FMA and F16C, which `super::kernels` checks once per process.

#![allow(unsafe_op_in_unsafe_fn)]

use super::avx2::{self, f16, widen32};
use super::format::{scales_mins_k4, Format};
use super::q8::Act32;
use std::arch::x86_64::*;

/// Whether this CPU runs these kernels.
pub(crate) fn available() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// Weight rows decoded for [`Band::product`]; kept per thread and reused.
#[derive(Default)]
pub(crate) struct Band {
    rows: usize,
    cols: usize,
    /// `rows x cols` quants.
    q: Vec<i8>,
    /// A scale per four quants.
    lane: Vec<f32>,
    /// Per four quants: `-128 * sum(q)`, where each lane's integer sum starts.
    start: Vec<i32>,
    /// Per 32 quants: the value added to each weight (it meets the activations' scaled sum).
    min: Vec<f32>,
    /// Whether the format has mins (the others leave `min` at zero and skip it).
    has_min: bool,
}

impl Band {
    /// Decodes `rows` (whole rows of blocks of `f`, `cols` weights each).
    ///
    /// # Safety
    /// The CPU must have the features [`available`] checks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(crate) unsafe fn decode<'a>(
        &mut self,
        f: Format,
        cols: usize,
        rows: impl ExactSizeIterator<Item = &'a [u8]>,
    ) {
        let n = rows.len();
        self.rows = n;
        self.cols = cols;
        self.q.resize(n * cols, 0);
        self.lane.resize(n * cols / 4, 0.0);
        self.start.resize(n * cols / 4, 0);
        self.min.resize(n * cols / 32, 0.0);
        self.has_min = matches!(f, Format::Q4_1 | Format::Q5_1 | Format::Q4K | Format::Q5K);
        let bytes = f.block_bytes();
        for (r, row) in rows.enumerate() {
            for (i, b) in row.chunks_exact(bytes).enumerate() {
                let at = r * cols + i * f.block_len();
                match f {
                    Format::Q4_0 => self.block32::<{ avx2::Q4_0 }>(b, at),
                    Format::Q4_1 => self.block32::<{ avx2::Q4_1 }>(b, at),
                    Format::Q5_0 => self.block32::<{ avx2::Q5_0 }>(b, at),
                    Format::Q5_1 => self.block32::<{ avx2::Q5_1 }>(b, at),
                    Format::Q8_0 => self.block32::<{ avx2::Q8_0 }>(b, at),
                    Format::Q4K => self.block_k45(b, at, false),
                    Format::Q5K => self.block_k45(b, at, true),
                    Format::Q6K => self.block_q6k(b, at),
                }
            }
        }
    }

    /// Stores 32 quants at `at` with one scale per 16 (`d0`, `d1`), and their lanes' starts.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn put(&mut self, at: usize, w: __m256i, d0: f32, d1: f32) {
        _mm256_storeu_si256(self.q[at..at + 32].as_mut_ptr().cast(), w);
        self.lane[at / 4..at / 4 + 4].fill(d0);
        self.lane[at / 4 + 4..at / 4 + 8].fill(d1);
        let pairs = _mm256_maddubs_epi16(_mm256_set1_epi8(1), w);
        let quads = _mm256_madd_epi16(pairs, _mm256_set1_epi16(1));
        let start = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(quads, 7));
        _mm256_storeu_si256(self.start[at / 4..at / 4 + 8].as_mut_ptr().cast(), start);
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block32<const F: u8>(&mut self, b: &[u8], at: usize) {
        let (w, d, m) = widen32::<F>(b);
        self.put(at, w, d, d);
        self.min[at / 32] = m;
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block_k45(&mut self, b: &[u8], at: usize, five: bool) {
        let (d, dmin) = (f16(b, 0), f16(b, 2));
        let (scales, mins) = scales_mins_k4(&b[4..16]);
        for c in 0..4 {
            for (k, half) in avx2::k45_quants(b, five, c).into_iter().enumerate() {
                let j = 2 * c + k;
                let ds = d * scales[j] as f32;
                self.put(at + 32 * j, half, ds, ds);
                self.min[at / 32 + j] = -dmin * mins[j] as f32;
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block_q6k(&mut self, b: &[u8], at: usize) {
        let d = f16(b, 208);
        let centre = _mm256_set1_epi8(32);
        for h in 0..2 {
            for (v, q) in avx2::q6k_quants(b, h).into_iter().enumerate() {
                let j = 4 * h + v;
                let sc = |k: usize| d * b[192 + 2 * j + k] as i8 as f32;
                self.put(at + 32 * j, _mm256_sub_epi8(q, centre), sc(0), sc(1));
                self.min[at / 32 + j] = 0.0;
            }
        }
    }

    /// `out[t * n + j0 + r] = acts[t] . row r` for every decoded row `r` and every activation
    /// row `t`.
    ///
    /// # Safety
    /// As [`Band::decode`]; every activation row holds `cols` values; `out` is valid for
    /// `acts.len() * n` values, and no other thread writes its columns `j0..j0 + rows`.
    pub(crate) unsafe fn product(&self, acts: &[Act32<'_>], out: *mut f32, n: usize, j0: usize) {
        for a in acts {
            assert!(a.q.len() == self.cols && a.d.len() == self.cols / 32);
        }
        assert!(j0 + self.rows <= n);
        let mut t = 0;
        while t + 4 <= acts.len() {
            self.rows_by::<4>(std::array::from_fn(|k| acts[t + k]), out.add(t * n + j0), n);
            t += 4;
        }
        for (k, &a) in acts[t..].iter().enumerate() {
            self.rows_by::<1>([a], out.add((t + k) * n + j0), n);
        }
    }

    /// Every row against `T` activation rows; the product of row `r` and activation row `t`
    /// goes to `out[t * n + r]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn rows_by<const T: usize>(&self, acts: [Act32<'_>; T], out: *mut f32, n: usize) {
        let put = |r0: usize, v: &[[f32; T]]| {
            for (r, row) in v.iter().enumerate() {
                for (t, &x) in row.iter().enumerate() {
                    *out.add(t * n + r0 + r) = x;
                }
            }
        };
        let mut r = 0;
        while r + 4 <= self.rows {
            put(r, &self.tile::<4, T>(r, &acts));
            r += 4;
        }
        for r in r..self.rows {
            put(r, &self.tile::<1, T>(r, &acts));
        }
    }

    /// Rows `r0..r0 + R` against `T` activation rows.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn tile<const R: usize, const T: usize>(
        &self,
        r0: usize,
        acts: &[Act32<'_>; T],
    ) -> [[f32; T]; R] {
        let cols = self.cols;
        assert!((r0 + R) * cols <= self.q.len());
        let q: [*const i8; R] = std::array::from_fn(|r| self.q.as_ptr().add((r0 + r) * cols));
        let lane: [*const f32; R] =
            std::array::from_fn(|r| self.lane.as_ptr().add((r0 + r) * cols / 4));
        let start: [*const i32; R] =
            std::array::from_fn(|r| self.start.as_ptr().add((r0 + r) * cols / 4));
        let rows = Rows { q, lane, start };
        let mut acc = [[_mm512_setzero_ps(); T]; R];
        let units = cols / 64;
        for u in 0..units {
            unit::<R, T>(&rows, acts, u, u64::MAX, &mut acc);
        }
        if !cols.is_multiple_of(64) {
            // One block of 32 is left: the upper half of every load is masked off.
            unit::<R, T>(&rows, acts, units, 0xffff_ffff, &mut acc);
        }
        if self.has_min {
            let blocks = cols / 32;
            let min: [*const f32; R] =
                std::array::from_fn(|r| self.min.as_ptr().add((r0 + r) * blocks));
            mins::<R, T>(&min, acts, blocks, &mut acc);
        }
        let mut out = [[0f32; T]; R];
        for r in 0..R {
            for t in 0..T {
                out[r][t] = _mm512_reduce_add_ps(acc[r][t]);
            }
        }
        out
    }
}

/// A tile's rows in a [`Band`].
struct Rows<const R: usize> {
    q: [*const i8; R],
    lane: [*const f32; R],
    start: [*const i32; R],
}

/// Adds unit `u` (64 quants, or the lower 32 where `qmask` says so) of each row to `acc`.
/// Loops rather than closures: a closure is not compiled with its function's features.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn unit<const R: usize, const T: usize>(
    rows: &Rows<R>,
    acts: &[Act32<'_>; T],
    u: usize,
    qmask: u64,
    acc: &mut [[__m512; T]; R],
) {
    let shift = _mm512_set1_epi8(-128);
    let full = qmask == u64::MAX;
    let mut a = [_mm512_setzero_si512(); T];
    let mut da = [_mm512_setzero_ps(); T];
    for t in 0..T {
        let x = _mm512_maskz_loadu_epi8(qmask, acts[t].q.as_ptr().add(64 * u));
        a[t] = _mm512_xor_si512(x, shift);
        let d = acts[t].d.as_ptr().add(2 * u);
        let d1 = if full { *d.add(1) } else { 0.0 };
        da[t] = _mm512_mask_blend_ps(0xff00, _mm512_set1_ps(*d), _mm512_set1_ps(d1));
    }
    let lmask = if full { 0xffff } else { 0x00ff };
    for (r, acc) in acc.iter_mut().enumerate() {
        let w = _mm512_maskz_loadu_epi8(qmask, rows.q[r].add(64 * u));
        let sw = _mm512_maskz_loadu_ps(lmask, rows.lane[r].add(16 * u));
        let start = _mm512_maskz_loadu_epi32(lmask, rows.start[r].add(16 * u));
        for t in 0..T {
            let p = _mm512_dpbusd_epi32(start, a[t], w);
            let s = _mm512_mul_ps(sw, da[t]);
            acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), s, acc[t]);
        }
    }
}

/// Adds each row's mins times each activation row's sums per 32, 16 blocks at a time.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
unsafe fn mins<const R: usize, const T: usize>(
    min: &[*const f32; R],
    acts: &[Act32<'_>; T],
    blocks: usize,
    acc: &mut [[__m512; T]; R],
) {
    let mut i = 0;
    while i < blocks {
        let mask = if blocks - i >= 16 {
            0xffff
        } else {
            (1u16 << (blocks - i)) - 1
        };
        let mut s = [_mm512_setzero_ps(); T];
        for t in 0..T {
            s[t] = _mm512_maskz_loadu_ps(mask, acts[t].s.as_ptr().add(i));
        }
        for r in 0..R {
            let m = _mm512_maskz_loadu_ps(mask, min[r].add(i));
            for t in 0..T {
                acc[r][t] = _mm512_fmadd_ps(m, s[t], acc[r][t]);
            }
        }
        i += 16;
    }
}
