//! NEON dot products of a row of 32-weight blocks with activations quantised per 32, for
//! aarch64 (where NEON is always present): each block's quants are widened to signed bytes,
//! multiplied in 16-bit pairs (`smull`/`smlal`), added pairwise into 32-bit lanes, and
//! scaled once per block. The k-quants (Q4_K, Q5_K, Q6_K) meet activations quantised per 256
//! the same way, with their integer sub-block scales applied in 32-bit lanes and the float
//! scale once per block.

#![allow(unsafe_op_in_unsafe_fn)]

use super::format::{f16_at, Format};
use super::q8::{Act256, Act32};
use std::arch::aarch64::*;

const Q4_0: u8 = 0;
const Q4_1: u8 = 1;
const Q5_0: u8 = 2;
const Q5_1: u8 = 3;
const Q8_0: u8 = 4;

/// `row . a` for a 32-weight format.
///
/// # Safety
/// `row` holds whole blocks of `f`, as many as `a` has scales, and `a.q` 32 values per block.
pub(crate) unsafe fn dot32(f: Format, row: &[u8], a: Act32<'_>) -> f32 {
    match f {
        Format::Q4_0 => dot::<Q4_0>(row, a),
        Format::Q4_1 => dot::<Q4_1>(row, a),
        Format::Q5_0 => dot::<Q5_0>(row, a),
        Format::Q5_1 => dot::<Q5_1>(row, a),
        _ => dot::<Q8_0>(row, a),
    }
}

const fn block_bytes(f: u8) -> usize {
    match f {
        Q4_0 => 18,
        Q4_1 => 20,
        Q5_0 => 22,
        Q5_1 => 24,
        _ => 34,
    }
}

/// The fifth bits of 16 quants (bits `0..16` of `bits`), as 0x10 in each byte where set.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn fifth_bits(bits: u16) -> uint8x16_t {
    let lo = vdup_n_u8(bits as u8);
    let hi = vdup_n_u8((bits >> 8) as u8);
    let masks = vld1q_u8([1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128].as_ptr());
    let set = vtstq_u8(vcombine_u8(lo, hi), masks);
    vandq_u8(set, vdupq_n_u8(0x10))
}

/// A block's quants 0..16 and 16..32 as signed bytes, its scale and min.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn widen<const F: u8>(b: &[u8]) -> (int8x16_t, int8x16_t, f32, f32) {
    let d = f16_at(b, 0);
    if F == Q8_0 {
        let q = &b[2..34];
        return (
            vld1q_s8(q.as_ptr().cast()),
            vld1q_s8(q[16..].as_ptr().cast()),
            d,
            0.0,
        );
    }
    let (qs, qh, m) = match F {
        Q4_0 => (&b[2..18], None, 0.0),
        Q4_1 => (&b[4..20], None, f16_at(b, 2)),
        Q5_0 => (&b[6..22], Some(&b[2..6]), 0.0),
        _ => (&b[8..24], Some(&b[4..8]), f16_at(b, 2)),
    };
    let x = vld1q_u8(qs.as_ptr());
    let mut lo = vandq_u8(x, vdupq_n_u8(0x0f));
    let mut hi = vshrq_n_u8::<4>(x);
    if let Some(h) = qh {
        lo = vorrq_u8(lo, fifth_bits(u16::from_le_bytes([h[0], h[1]])));
        hi = vorrq_u8(hi, fifth_bits(u16::from_le_bytes([h[2], h[3]])));
    }
    let (lo, hi) = (vreinterpretq_s8_u8(lo), vreinterpretq_s8_u8(hi));
    let centre = match F {
        Q4_0 => 8,
        Q5_0 => 16,
        _ => 0,
    };
    let c = vdupq_n_s8(centre);
    (vsubq_s8(lo, c), vsubq_s8(hi, c), d, m)
}

#[target_feature(enable = "neon")]
unsafe fn dot<const F: u8>(row: &[u8], a: Act32<'_>) -> f32 {
    let bytes = block_bytes(F);
    let mut acc = vdupq_n_f32(0.0);
    let mut mins = 0f32;
    for (i, b) in row.chunks_exact(bytes).enumerate().take(a.d.len()) {
        let (lo, hi, d, m) = widen::<F>(b);
        let [s, t] = dot_halves([lo, hi], a.q[32 * i..32 * (i + 1)].as_ptr());
        let sums = vaddq_s32(s, t);
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sums), d * a.d[i]);
        mins += m * a.s[i];
    }
    vaddvq_f32(acc) + mins
}

/// `row . a` for a k-quant format.
///
/// # Safety
/// `row` holds whole blocks of `f`, as many as `a` has scales, and `a.q` 256 values per block.
pub(crate) unsafe fn dot256(f: Format, row: &[u8], a: Act256<'_>) -> f32 {
    match f {
        Format::Q6K => dot_q6k(row, a),
        Format::Q5K => dot_k45::<true>(row, a),
        _ => dot_k45::<false>(row, a),
    }
}

/// The sums of `x . y` over each 16 bytes: two 16-value groups as four 32-bit lanes each.
/// Each 16-bit lane takes two products of at most 128 * 127: no overflow.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn dot_halves(x: [int8x16_t; 2], y: *const i8) -> [int32x4_t; 2] {
    let (y0, y1) = (vld1q_s8(y), vld1q_s8(y.add(16)));
    let s = vmlal_high_s8(vmull_s8(vget_low_s8(x[0]), vget_low_s8(y0)), x[0], y0);
    let t = vmlal_high_s8(vmull_s8(vget_low_s8(x[1]), vget_low_s8(y1)), x[1], y1);
    [vpaddlq_s16(s), vpaddlq_s16(t)]
}

#[target_feature(enable = "neon")]
unsafe fn dot_k45<const FIVE: bool>(row: &[u8], a: Act256<'_>) -> f32 {
    let bytes = if FIVE { 176 } else { 144 };
    let low = vdupq_n_u8(0x0f);
    let mut total = 0f32;
    for (i, b) in row.chunks_exact(bytes).enumerate().take(a.d.len()) {
        let (sc, m) = super::format::scales_mins_k4(&b[4..16]);
        let (qh, qs) = if FIVE {
            (Some(&b[16..48]), &b[48..176])
        } else {
            (None, &b[16..144])
        };
        let high = qh.map(|h| [vld1q_u8(h.as_ptr()), vld1q_u8(h[16..].as_ptr())]);
        let y = a.q[256 * i..256 * (i + 1)].as_ptr();
        let mut acc = vdupq_n_s32(0);
        for c in 0..4 {
            let x = [
                vld1q_u8(qs[32 * c..].as_ptr()),
                vld1q_u8(qs[32 * c + 16..].as_ptr()),
            ];
            let mut lo = x.map(|v| vandq_u8(v, low));
            let mut hi = x.map(|v| vshrq_n_u8::<4>(v));
            if let Some(h) = high {
                let (bit_lo, bit_hi) = (vdupq_n_u8(1 << (2 * c)), vdupq_n_u8(2 << (2 * c)));
                let sixteen = vdupq_n_u8(0x10);
                for k in 0..2 {
                    lo[k] = vorrq_u8(lo[k], vandq_u8(vtstq_u8(h[k], bit_lo), sixteen));
                    hi[k] = vorrq_u8(hi[k], vandq_u8(vtstq_u8(h[k], bit_hi), sixteen));
                }
            }
            let [s, t] = dot_halves(lo.map(|v| vreinterpretq_s8_u8(v)), y.add(64 * c));
            acc = vmlaq_n_s32(acc, vaddq_s32(s, t), sc[2 * c] as i32);
            let [s, t] = dot_halves(hi.map(|v| vreinterpretq_s8_u8(v)), y.add(64 * c + 32));
            acc = vmlaq_n_s32(acc, vaddq_s32(s, t), sc[2 * c + 1] as i32);
        }
        let bsums = &a.bsums[16 * i..16 * (i + 1)];
        let mins: i32 = (0..8)
            .map(|j| m[j] as i32 * (bsums[2 * j] as i32 + bsums[2 * j + 1] as i32))
            .sum();
        total += a.d[i] * (f16_at(b, 0) * vaddvq_s32(acc) as f32 - f16_at(b, 2) * mins as f32);
    }
    total
}

#[target_feature(enable = "neon")]
unsafe fn dot_q6k(row: &[u8], a: Act256<'_>) -> f32 {
    let (low, three, centre) = (vdupq_n_u8(0x0f), vdupq_n_u8(3), vdupq_n_s8(32));
    let mut total = 0f32;
    for (i, b) in row.chunks_exact(210).enumerate().take(a.d.len()) {
        let sc = &b[192..208];
        let y = a.q[256 * i..256 * (i + 1)].as_ptr();
        let mut acc = vdupq_n_s32(0);
        for h in 0..2 {
            let (ql, qh) = (&b[64 * h..64 * h + 64], &b[128 + 32 * h..160 + 32 * h]);
            let l0 = [vld1q_u8(ql.as_ptr()), vld1q_u8(ql[16..].as_ptr())];
            let l1 = [vld1q_u8(ql[32..].as_ptr()), vld1q_u8(ql[48..].as_ptr())];
            let hb = [vld1q_u8(qh.as_ptr()), vld1q_u8(qh[16..].as_ptr())];
            // Quarter `k` of this half: its nibbles, and bits 2k..2k+2 of `qh` above them.
            let quarter = |k: usize| -> [int8x16_t; 2] {
                let nib = |v: uint8x16_t| match k {
                    0 | 1 => vandq_u8(v, low),
                    _ => vshrq_n_u8::<4>(v),
                };
                let bits = |v: uint8x16_t| {
                    let v = match k {
                        0 => v,
                        1 => vshrq_n_u8::<2>(v),
                        2 => vshrq_n_u8::<4>(v),
                        _ => vshrq_n_u8::<6>(v),
                    };
                    vshlq_n_u8::<4>(vandq_u8(v, three))
                };
                let src = [l0, l1][k & 1];
                std::array::from_fn(|j| {
                    let q = vorrq_u8(nib(src[j]), bits(hb[j]));
                    vsubq_s8(vreinterpretq_s8_u8(q), centre)
                })
            };
            for k in 0..4 {
                let at = 128 * h + 32 * k;
                let [s0, s1] = dot_halves(quarter(k), y.add(at));
                acc = vmlaq_n_s32(acc, s0, sc[at / 16] as i8 as i32);
                acc = vmlaq_n_s32(acc, s1, sc[at / 16 + 1] as i8 as i32);
            }
        }
        total += f16_at(b, 208) * a.d[i] * vaddvq_s32(acc) as f32;
    }
    total
}
