//! NEON dot products of a row of 32-weight blocks with activations quantised per 32, for
//! aarch64 (where NEON is always present): each block's quants are widened to signed bytes,
//! multiplied in 16-bit pairs (`smull`/`smlal`), added pairwise into 32-bit lanes, and
//! scaled once per block. The k-quants take the scalar path on aarch64.

#![allow(unsafe_op_in_unsafe_fn)]

use super::format::{f16_at, Format};
use super::q8::Act32;
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
        let y = &a.q[32 * i..32 * (i + 1)];
        let (y0, y1) = (vld1q_s8(y.as_ptr()), vld1q_s8(y[16..].as_ptr()));
        // Two products of at most 128 * 127 in each 16-bit lane: no overflow.
        let s = vmlal_high_s8(vmull_s8(vget_low_s8(lo), vget_low_s8(y0)), lo, y0);
        let t = vmlal_high_s8(vmull_s8(vget_low_s8(hi), vget_low_s8(y1)), hi, y1);
        let sums = vaddq_s32(vpaddlq_s16(s), vpaddlq_s16(t));
        acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sums), d * a.d[i]);
        mins += m * a.s[i];
    }
    vaddvq_f32(acc) + mins
}
