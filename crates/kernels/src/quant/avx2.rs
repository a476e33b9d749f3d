//! AVX2 dot products of a weight row with quantised activations: the weights are widened
//! to one byte per quant in registers and multiplied with `maddubs` (unsigned by signed
//! bytes into 16-bit pairs), then `madd` into 32-bit sums, one float multiply per block.
//!
//! Every function is `unsafe` for one reason: the CPU must have AVX2, FMA and F16C, which
//! `super::kernels` checks once per process. Slices are indexed with bounds checks; the
//! 32-byte loads past an index rely on the caller's shape checks: a row holds whole blocks and
//! the activations hold the same number of values.

#![allow(unsafe_op_in_unsafe_fn)]

use super::format::{scales_mins_k4, Format};
use super::q8::{Act256, Act32};
use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load(p: &[u8]) -> __m256i {
    debug_assert!(p.len() >= 32);
    _mm256_loadu_si256(p.as_ptr().cast())
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load_i8(p: &[i8]) -> __m256i {
    debug_assert!(p.len() >= 32);
    _mm256_loadu_si256(p.as_ptr().cast())
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16(b: &[u8], at: usize) -> f32 {
    let bits = u16::from_le_bytes([b[at], b[at + 1]]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(bits as i16)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum_f32(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// Sixteen nibbles each way: low nibbles in bytes 0..16, high nibbles in bytes 16..32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles16(qs: &[u8]) -> __m256i {
    debug_assert!(qs.len() >= 16);
    let x = _mm_loadu_si128(qs.as_ptr().cast());
    let m = _mm_set1_epi8(0x0f);
    let lo = _mm_and_si128(x, m);
    let hi = _mm_and_si128(_mm_srli_epi16(x, 4), m);
    _mm256_set_m128i(hi, lo)
}

/// Byte `i` is 0xff where bit `i` of `bits` is set.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bytes_from_bits(bits: u32) -> __m256i {
    let x = _mm256_set1_epi32(bits as i32);
    // Byte i takes byte i / 8 of the word ...
    let spread = _mm256_setr_epi64x(
        0,
        0x0101_0101_0101_0101,
        0x0202_0202_0202_0202,
        0x0303_0303_0303_0303,
    );
    let x = _mm256_shuffle_epi8(x, spread);
    // ... and keeps only bit i % 8: all others are set, so the byte is 0xff iff it was set.
    let others = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe);
    _mm256_cmpeq_epi8(_mm256_or_si256(x, others), _mm256_set1_epi8(-1))
}

/// 32-bit sums of 4 products each of unsigned `w` and signed `a`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_u8(w: __m256i, a: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(w, a), _mm256_set1_epi16(1))
}

/// Dot products of `R` weight rows with `T` activation rows, for one format: each block of
/// weights is widened once and meets every activation row, and the `R x T` sums are
/// independent chains. `R = 4, T = 1` serves decoding (one token, the activations loaded
/// once for four rows); `R = 2, T = 4` serves prompts (the weights widened once for four
/// tokens).
pub(crate) type Tile32<const R: usize, const T: usize> =
    unsafe fn([&[u8]; R], [Act32<'_>; T]) -> [[f32; T]; R];
pub(crate) type Tile256<const R: usize, const T: usize> =
    unsafe fn([&[u8]; R], [Act256<'_>; T]) -> [[f32; T]; R];

/// The tiles of a k-quant format: one row, four rows by one token, one row by four tokens
/// (a block's scales are decoded once for four tokens).
pub(crate) struct Tiles256 {
    pub one: Tile256<1, 1>,
    pub rows: Tile256<4, 1>,
    pub tokens: Tile256<1, 4>,
}

/// The three tiles the product uses, for one format.
pub(crate) struct Tiles32 {
    pub one: Tile32<1, 1>,
    pub rows: Tile32<4, 1>,
    pub tokens: Tile32<2, 4>,
}

// Formats as const parameters, so each kernel is compiled with its format's branch only.
pub(super) const Q4_0: u8 = 0;
pub(super) const Q4_1: u8 = 1;
pub(super) const Q5_0: u8 = 2;
pub(super) const Q5_1: u8 = 3;
pub(super) const Q8_0: u8 = 4;
const Q4K: u8 = 5;
const Q5K: u8 = 6;
const Q6K: u8 = 7;

/// Which compilation of the tiles runs (see [`tiles32`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Build {
    /// AVX2, FMA and F16C: 16 vector registers.
    Avx2,
    /// With AVX-512 F, BW and VL as well: 32 vector registers.
    Avx512,
    /// With AVX-512 FP16 as well: a block's f16 scale loads with one `vmovsh`.
    Avx512Fp16,
}

impl Build {
    /// The fastest build this CPU runs, given that it has the AVX-512 features `avx512`.
    pub(crate) fn for_cpu(avx512: bool) -> Build {
        static FP16: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        if !avx512 {
            Build::Avx2
        } else if *FP16.get_or_init(|| is_x86_feature_detected!("avx512fp16")) {
            Build::Avx512Fp16
        } else {
            Build::Avx512
        }
    }
}

fn tiles<const F: u8>(build: Build) -> Tiles32 {
    match build {
        Build::Avx2 => Tiles32 {
            one: tile32::<F, 1, 1>,
            rows: tile32::<F, 4, 1>,
            tokens: tile32::<F, 2, 4>,
        },
        Build::Avx512 => Tiles32 {
            one: tile32_evex::<F, 1, 1>,
            rows: tile32_evex::<F, 4, 1>,
            tokens: tile32_evex::<F, 2, 4>,
        },
        Build::Avx512Fp16 => Tiles32 {
            one: tile32_fp16::<F, 1, 1>,
            rows: tile32_fp16::<F, 4, 1>,
            tokens: tile32_fp16::<F, 2, 4>,
        },
    }
}

/// The tiles for format `f`, in one of three compilations of the same code. With 16 vector
/// registers the four-row tiles keep their sums on the stack, a load and a store per block;
/// AVX-512's 32 registers hold them (one-token decoding +6-8%). AVX-512 FP16 then closes the
/// rest of the gap to a `-C target-cpu=native` build (0.81-0.87x before, 0.93-1.09x after on
/// SmolLM2's one-token decoding): measured, not explained, as this VM has no hardware
/// counters; the visible difference is the scale's load (`vmovsh` against `vpinsrw` into
/// a live register).
pub(crate) fn tiles32(f: Format, build: Build) -> Tiles32 {
    match f {
        Format::Q4_0 => tiles::<Q4_0>(build),
        Format::Q4_1 => tiles::<Q4_1>(build),
        Format::Q5_0 => tiles::<Q5_0>(build),
        Format::Q5_1 => tiles::<Q5_1>(build),
        _ => tiles::<Q8_0>(build),
    }
}

fn tiles_k<const F: u8>(build: Build) -> Tiles256 {
    match build {
        Build::Avx2 => Tiles256 {
            one: tile256::<F, 1, 1>,
            rows: tile256::<F, 4, 1>,
            tokens: tile256::<F, 1, 4>,
        },
        Build::Avx512 => Tiles256 {
            one: tile256_evex::<F, 1, 1>,
            rows: tile256_evex::<F, 4, 1>,
            tokens: tile256_evex::<F, 1, 4>,
        },
        Build::Avx512Fp16 => Tiles256 {
            one: tile256_fp16::<F, 1, 1>,
            rows: tile256_fp16::<F, 4, 1>,
            tokens: tile256_fp16::<F, 1, 4>,
        },
    }
}

/// As [`tiles32`], for the k-quants.
pub(crate) fn tiles256(f: Format, build: Build) -> Tiles256 {
    match f {
        Format::Q4K => tiles_k::<Q4K>(build),
        Format::Q5K => tiles_k::<Q5K>(build),
        _ => tiles_k::<Q6K>(build),
    }
}

/// The three compilations of a tile (see [`Build`]), each running the `#[inline(always)]`
/// body `$body`.
macro_rules! three_builds {
    ($body:ident, $act:ident, $($name:ident: $features:literal),+) => {
        $(
            #[target_feature(enable = $features)]
            unsafe fn $name<const F: u8, const R: usize, const T: usize>(
                rows: [&[u8]; R],
                acts: [$act<'_>; T],
            ) -> [[f32; T]; R] {
                $body::<F, R, T>(rows, acts)
            }
        )+
    };
}
three_builds!(
    tile32_body,
    Act32,
    tile32: "avx2,fma,f16c",
    tile32_evex: "avx2,fma,f16c,avx512f,avx512bw,avx512vl",
    tile32_fp16: "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512fp16"
);
three_builds!(
    tile256_body,
    Act256,
    tile256: "avx2,fma,f16c",
    tile256_evex: "avx2,fma,f16c,avx512f,avx512bw,avx512vl",
    tile256_fp16: "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512fp16"
);

/// The format of a const code.
const fn format(f: u8) -> Format {
    match f {
        Q4_0 => Format::Q4_0,
        Q4_1 => Format::Q4_1,
        Q5_0 => Format::Q5_0,
        Q5_1 => Format::Q5_1,
        Q8_0 => Format::Q8_0,
        Q4K => Format::Q4K,
        Q5K => Format::Q5K,
        _ => Format::Q6K,
    }
}

/// Whether the format's quants widen to signed bytes (no min) rather than unsigned ones.
const fn signed(f: u8) -> bool {
    matches!(f, Q4_0 | Q5_0 | Q8_0)
}

/// A block's 32 quants as bytes (signed or unsigned, see [`signed`]), its scale and min.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn widen32<const F: u8>(b: &[u8]) -> (__m256i, f32, f32) {
    let d = f16(b, 0);
    match F {
        Q4_0 => {
            let w = _mm256_sub_epi8(nibbles16(&b[2..]), _mm256_set1_epi8(8));
            (w, d, 0.0)
        }
        Q4_1 => (nibbles16(&b[4..]), d, f16(b, 2)),
        Q5_0 => {
            let hb = bytes_from_bits(u32::from_le_bytes([b[2], b[3], b[4], b[5]]));
            // A clear fifth bit means the quant is below 16: set the high nibble to make the
            // byte (q - 16) in two's complement.
            let w = _mm256_or_si256(
                nibbles16(&b[6..]),
                _mm256_andnot_si256(hb, _mm256_set1_epi8(0xf0u8 as i8)),
            );
            (w, d, 0.0)
        }
        Q5_1 => {
            let hb = bytes_from_bits(u32::from_le_bytes([b[4], b[5], b[6], b[7]]));
            let w = _mm256_or_si256(
                nibbles16(&b[8..]),
                _mm256_and_si256(hb, _mm256_set1_epi8(0x10)),
            );
            (w, d, f16(b, 2))
        }
        _ => (load(&b[2..]), d, 0.0),
    }
}

/// Inlined into every build of [`tile32`]; the CPU must have AVX2, FMA and F16C.
#[inline(always)]
unsafe fn tile32_body<const F: u8, const R: usize, const T: usize>(
    rows: [&[u8]; R],
    acts: [Act32<'_>; T],
) -> [[f32; T]; R] {
    let bytes = format(F).block_bytes();
    let blocks = acts[0].d.len();
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let mut mins = [[0f32; T]; R];
    // The caller passes adjacent rows of a matrix; the rows two groups on are fetched into
    // cache while these are computed (prefetching never faults, even past the end).
    let ahead = rows[0].as_ptr().wrapping_add(2 * R * rows[0].len());
    for i in 0..blocks {
        let at = ahead.wrapping_add(R * bytes * i);
        _mm_prefetch::<_MM_HINT_T0>(at.cast());
        _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(64).cast());
        let qa: [__m256i; T] = std::array::from_fn(|t| load_i8(&acts[t].q[32 * i..]));
        for r in 0..R {
            let (w, d, m) = widen32::<F>(&rows[r][bytes * i..bytes * (i + 1)]);
            // Signed weights move their sign onto the activations: maddubs multiplies
            // unsigned by signed bytes.
            let aw = if signed(F) { _mm256_sign_epi8(w, w) } else { w };
            for t in 0..T {
                let y = if signed(F) {
                    _mm256_sign_epi8(qa[t], w)
                } else {
                    qa[t]
                };
                let sums = _mm256_cvtepi32_ps(dot_u8(aw, y));
                let scale = _mm256_set1_ps(d * acts[t].d[i]);
                acc[r][t] = _mm256_fmadd_ps(scale, sums, acc[r][t]);
                if !signed(F) {
                    mins[r][t] += m * acts[t].s[i];
                }
            }
        }
    }
    std::array::from_fn(|r| std::array::from_fn(|t| hsum_f32(acc[r][t]) + mins[r][t]))
}

/// Inlined into every build of [`tile256`]; the CPU must have AVX2, FMA and F16C.
#[inline(always)]
unsafe fn tile256_body<const F: u8, const R: usize, const T: usize>(
    rows: [&[u8]; R],
    acts: [Act256<'_>; T],
) -> [[f32; T]; R] {
    let bytes = format(F).block_bytes();
    let blocks = acts[0].d.len();
    let mut acc = [[_mm256_setzero_ps(); T]; R];
    let ahead = rows[0].as_ptr().wrapping_add(2 * R * rows[0].len());
    for i in 0..blocks {
        for r in 0..R {
            let at = ahead.wrapping_add((R * i + r) * bytes);
            for line in (0..bytes).step_by(64) {
                _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line).cast());
            }
            let b = &rows[r][bytes * i..bytes * (i + 1)];
            if F == Q6K {
                block_q6k::<T>(b, i, &acts, &mut acc[r]);
            } else {
                block_k45::<F, T>(b, i, &acts, &mut acc[r]);
            }
        }
    }
    std::array::from_fn(|r| std::array::from_fn(|t| hsum_f32(acc[r][t])))
}

/// Block `i` of each activation row's sums per 16, as 16 lanes of 16 bits.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bsums(a: &Act256<'_>, i: usize) -> __m256i {
    let s = &a.bsums[16 * i..16 * (i + 1)];
    _mm256_loadu_si256(s.as_ptr().cast())
}

/// Adds one Q4_K/Q5_K block's products with block `i` of each activation row to `acc`:
/// `d * sum_j(scale_j * q . y_j)` less `dmin * sum_j(min_j * sum(y_j))`, both scaled by the
/// activations' `d`; the mins meet the sums per 16 in one `madd`.
// Always inlined, with no features of its own, so it takes each tile build's (see `Build`).
#[inline(always)]
unsafe fn block_k45<const F: u8, const T: usize>(
    b: &[u8],
    i: usize,
    acts: &[Act256<'_>; T],
    acc: &mut [__m256; T],
) {
    let (scales, mins) = scales_mins_k4(&b[4..16]);
    let mut sumi = [_mm256_setzero_si256(); T];
    for c in 0..4 {
        let [lo, hi] = k45_quants(b, F == Q5K, c);
        let (s_lo, s_hi) = (
            _mm256_set1_epi16(scales[2 * c] as i16),
            _mm256_set1_epi16(scales[2 * c + 1] as i16),
        );
        for t in 0..T {
            let qa = &acts[t].q[256 * i + 64 * c..];
            let p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load_i8(qa)), s_lo);
            let p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load_i8(&qa[32..])), s_hi);
            sumi[t] = _mm256_add_epi32(sumi[t], _mm256_add_epi32(p_lo, p_hi));
        }
    }
    // Each min twice, once for each 16 of its 32.
    let pairs = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    let mins = _mm_shuffle_epi8(_mm_loadl_epi64(mins.as_ptr().cast()), pairs);
    let mins = _mm256_cvtepu8_epi16(mins);
    let (d, dmin) = (f16(b, 0), f16(b, 2));
    for t in 0..T {
        let da = acts[t].d[i];
        let m = _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums(&acts[t], i), mins));
        let sums = _mm256_cvtepi32_ps(sumi[t]);
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * da), sums, acc[t]);
        acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * da), m, acc[t]);
    }
}

/// Adds one Q6_K block's products with block `i` of each activation row to `acc`, as
/// [`block_k45`]: the quants are taken unsigned (0..63) and their offset of 32 comes back,
/// in integers, through the sums per 16.
// Always inlined, with no features of its own, so it takes each tile build's (see `Build`).
#[inline(always)]
unsafe fn block_q6k<const T: usize>(
    b: &[u8],
    i: usize,
    acts: &[Act256<'_>; T],
    acc: &mut [__m256; T],
) {
    let mut sumi = [_mm256_setzero_si256(); T];
    for h in 0..2 {
        let sc = &b[192 + 8 * h..];
        let quants = q6k_quants(b, h);
        for (v, &q) in quants.iter().enumerate() {
            let scales = _mm256_set_m128i(
                _mm_set1_epi16(sc[2 * v + 1] as i8 as i16),
                _mm_set1_epi16(sc[2 * v] as i8 as i16),
            );
            for t in 0..T {
                let y = load_i8(&acts[t].q[256 * i + 128 * h + 32 * v..]);
                let p = _mm256_madd_epi16(_mm256_maddubs_epi16(q, y), scales);
                sumi[t] = _mm256_add_epi32(sumi[t], p);
            }
        }
    }
    let scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(b[192..208].as_ptr().cast()));
    let d = f16(b, 208);
    for t in 0..T {
        let offset = _mm256_madd_epi16(bsums(&acts[t], i), scales);
        let sums = _mm256_sub_epi32(sumi[t], _mm256_slli_epi32(offset, 5));
        let dd = _mm256_set1_ps(d * acts[t].d[i]);
        acc[t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(sums), acc[t]);
    }
}

/// Quants `64c..64c + 64` of a Q4_K (`five` false) or Q5_K block, unsigned: the low nibbles
/// of 32 bytes, then their high nibbles, each with its fifth bit for Q5_K.
// Always inlined, with no features of its own, so it takes each tile build's (see `Build`).
#[inline(always)]
pub(super) unsafe fn k45_quants(b: &[u8], five: bool, c: usize) -> [__m256i; 2] {
    let low = _mm256_set1_epi8(0x0f);
    let qs = if five { &b[48..176] } else { &b[16..144] };
    let q4 = load(&qs[32 * c..]);
    let mut halves = [
        _mm256_and_si256(q4, low),
        _mm256_and_si256(_mm256_srli_epi16(q4, 4), low),
    ];
    if five {
        let qh = load(&b[16..48]);
        for (k, half) in halves.iter_mut().enumerate() {
            let shift = _mm_cvtsi32_si128((2 * c + k) as i32);
            let bit = _mm256_and_si256(_mm256_srl_epi16(qh, shift), _mm256_set1_epi8(1));
            *half = _mm256_or_si256(*half, _mm256_slli_epi16(bit, 4));
        }
    }
    halves
}

/// Quants `128h..128h + 128` of a Q6_K block, unsigned (0..63), in four runs of 32.
// Always inlined, with no features of its own, so it takes each tile build's (see `Build`).
#[inline(always)]
pub(super) unsafe fn q6k_quants(b: &[u8], h: usize) -> [__m256i; 4] {
    let low = _mm256_set1_epi8(0x0f);
    let two_bits = _mm256_set1_epi8(3);
    let ql = &b[64 * h..];
    let qh = load(&b[128 + 32 * h..]);
    let (l0, l1) = (load(ql), load(&ql[32..]));
    [
        _mm256_or_si256(_mm256_and_si256(l0, low), high2(qh, 0, two_bits)),
        _mm256_or_si256(_mm256_and_si256(l1, low), high2(qh, 2, two_bits)),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(l0, 4), low),
            high2(qh, 4, two_bits),
        ),
        _mm256_or_si256(
            _mm256_and_si256(_mm256_srli_epi16(l1, 4), low),
            high2(qh, 6, two_bits),
        ),
    ]
}

/// Two bits of every byte of `qh` from bit `s`, moved to bits 4 and 5.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn high2(qh: __m256i, s: i32, two_bits: __m256i) -> __m256i {
    let bits = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(s)), two_bits);
    _mm256_slli_epi16(bits, 4)
}

/// Quantises 32 values to bytes at `q` (as `q8::quantize32` does, rounding ties to even):
/// returns the scale and the sum of the quants.
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn quantize32(x: &[f32], q: &mut [i8]) -> (f32, i32) {
    assert!(x.len() >= 32 && q.len() >= 32);
    let p = x.as_ptr();
    let v = [
        _mm256_loadu_ps(p),
        _mm256_loadu_ps(p.add(8)),
        _mm256_loadu_ps(p.add(16)),
        _mm256_loadu_ps(p.add(24)),
    ];
    let sign = _mm256_set1_ps(-0.0);
    let mut m = _mm256_andnot_ps(sign, v[0]);
    for x in &v[1..] {
        m = _mm256_max_ps(m, _mm256_andnot_ps(sign, *x));
    }
    let m = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    let m = _mm_max_ss(m, _mm_movehdup_ps(m));
    let d = _mm_cvtss_f32(m) / 127.0;
    let id = _mm256_set1_ps(if d != 0.0 { 1.0 / d } else { 0.0 });
    // Rounds to nearest, ties to even (the default rounding mode).
    let i = [
        _mm256_cvtps_epi32(_mm256_mul_ps(v[0], id)),
        _mm256_cvtps_epi32(_mm256_mul_ps(v[1], id)),
        _mm256_cvtps_epi32(_mm256_mul_ps(v[2], id)),
        _mm256_cvtps_epi32(_mm256_mul_ps(v[3], id)),
    ];
    let total = _mm256_add_epi32(_mm256_add_epi32(i[0], i[1]), _mm256_add_epi32(i[2], i[3]));
    let s = _mm_add_epi32(
        _mm256_castsi256_si128(total),
        _mm256_extracti128_si256(total, 1),
    );
    let s = _mm_hadd_epi32(s, s);
    let s = _mm_hadd_epi32(s, s);
    // The packs interleave 128-bit halves; one permute puts the bytes back in order.
    let words = _mm256_packs_epi16(
        _mm256_packs_epi32(i[0], i[1]),
        _mm256_packs_epi32(i[2], i[3]),
    );
    let bytes = _mm256_permutevar8x32_epi32(words, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256(q.as_mut_ptr().cast(), bytes);
    (d, _mm_cvtsi128_si32(s))
}
