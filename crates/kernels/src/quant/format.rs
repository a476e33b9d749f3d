//! GGML block formats: their byte layouts, dequantisation, and the integer dot product of
//! one block row with quantised activations, written plainly. This is the reference the
//! SIMD paths are tested against, and the path on CPUs without AVX2.

use super::q8::{Act256, Act32};
use half::f16;

/// A weight block format, as GGUF stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
}

impl Format {
    pub const ALL: [Format; 8] = [
        Format::Q4_0,
        Format::Q4_1,
        Format::Q5_0,
        Format::Q5_1,
        Format::Q8_0,
        Format::Q4K,
        Format::Q5K,
        Format::Q6K,
    ];

    /// Weights per block.
    pub fn block_len(self) -> usize {
        if self.is_k() {
            256
        } else {
            32
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            Format::Q4_0 => 18,
            Format::Q4_1 => 20,
            Format::Q5_0 => 22,
            Format::Q5_1 => 24,
            Format::Q8_0 => 34,
            Format::Q4K => 144,
            Format::Q5K => 176,
            Format::Q6K => 210,
        }
    }

    /// The 256-weight formats, which meet activations quantised in 256-wide blocks.
    pub fn is_k(self) -> bool {
        matches!(self, Format::Q4K | Format::Q5K | Format::Q6K)
    }
}

pub(crate) fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// The 6-bit scale and min of sub-block `j` of a Q4_K/Q5_K block's 12 packed bytes.
#[cfg(test)]
pub(crate) fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

/// All eight scales and mins of a Q4_K/Q5_K block's 12 packed bytes at once, as
/// [`scale_min_k4`] gives them one by one: 32-bit words rather than bytes.
// Always inlined: a call per block cost 1% of Qwen's decoding.
#[inline(always)]
pub(crate) fn scales_mins_k4(q: &[u8]) -> ([u8; 8], [u8; 8]) {
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (w0, w1, w2) = (word(0), word(1), word(2));
    let (six, four, two) = (0x3f3f_3f3f, 0x0f0f_0f0f, 0x0303_0303);
    let scales_hi = (w2 & four) | (((w0 >> 6) & two) << 4);
    let mins_hi = ((w2 >> 4) & four) | (((w1 >> 6) & two) << 4);
    let join = |lo: u32, hi: u32| (lo as u64 | (hi as u64) << 32).to_le_bytes();
    (join(w0 & six, scales_hi), join(w1 & six, mins_hi))
}

/// The quants of a 32-weight block (`Q4_0`..`Q8_0`), its scale `d`, and the value added to
/// every weight (`m`, for `Q4_1`/`Q5_1`; the symmetric formats' quants come out centred).
fn unpack32(f: Format, b: &[u8], q: &mut [i32; 32]) -> (f32, f32) {
    let d = f16_at(b, 0);
    let (m, centre, high, qs) = match f {
        Format::Q4_0 => (0.0, 8, None, &b[2..18]),
        Format::Q4_1 => (f16_at(b, 2), 0, None, &b[4..20]),
        Format::Q5_0 => (0.0, 16, Some(&b[2..6]), &b[6..22]),
        Format::Q5_1 => (f16_at(b, 2), 0, Some(&b[4..8]), &b[8..24]),
        Format::Q8_0 => {
            for (o, &v) in q.iter_mut().zip(&b[2..34]) {
                *o = v as i8 as i32;
            }
            return (d, 0.0);
        }
        _ => unreachable!("unpack32 takes 32-weight formats"),
    };
    let qh = high.map_or(0, |h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]));
    for j in 0..16 {
        let hi = |bit: usize| (((qh >> bit) & 1) << 4) as i32;
        q[j] = ((qs[j] & 0x0f) as i32 | hi(j)) - centre;
        q[j + 16] = ((qs[j] >> 4) as i32 | hi(j + 16)) - centre;
    }
    (d, m)
}

/// The unsigned quants of a Q4_K/Q5_K block and its 8 (scale, min) pairs.
fn unpack_k45(f: Format, b: &[u8], q: &mut [i32; 256]) -> [(u8, u8); 8] {
    let scales = &b[4..16];
    let (qh, qs) = if f == Format::Q5K {
        (Some(&b[16..48]), &b[48..176])
    } else {
        (None, &b[16..144])
    };
    for c in 0..4 {
        for l in 0..32 {
            let v = qs[32 * c + l];
            let h = qh.map_or(0, |h| h[l] as i32);
            q[64 * c + l] = (v & 0x0f) as i32 | (((h >> (2 * c)) & 1) << 4);
            q[64 * c + 32 + l] = (v >> 4) as i32 | (((h >> (2 * c + 1)) & 1) << 4);
        }
    }
    let (sc, m) = scales_mins_k4(scales);
    std::array::from_fn(|j| (sc[j], m[j]))
}

/// The signed quants (-32..31) of a Q6_K block and its 16 scales.
fn unpack_q6k(b: &[u8], q: &mut [i32; 256]) -> [i8; 16] {
    let (ql, qh) = (&b[0..128], &b[128..192]);
    for h in 0..2 {
        let (ql, qh) = (&ql[64 * h..], &qh[32 * h..]);
        let y = &mut q[128 * h..];
        for l in 0..32 {
            let bits = |s: usize| ((qh[l] >> s) & 3) as i32;
            y[l] = ((ql[l] & 0x0f) as i32 | (bits(0) << 4)) - 32;
            y[l + 32] = ((ql[l + 32] & 0x0f) as i32 | (bits(2) << 4)) - 32;
            y[l + 64] = ((ql[l] >> 4) as i32 | (bits(4) << 4)) - 32;
            y[l + 96] = ((ql[l + 32] >> 4) as i32 | (bits(6) << 4)) - 32;
        }
    }
    std::array::from_fn(|i| b[192 + i] as i8)
}

/// Writes the weights of one row of blocks into `out` (`out.len()` weights).
pub fn dequantize(f: Format, row: &[u8], out: &mut [f32]) {
    let (n, bytes) = (f.block_len(), f.block_bytes());
    for (b, y) in row.chunks_exact(bytes).zip(out.chunks_exact_mut(n)) {
        match f {
            Format::Q4K | Format::Q5K => {
                let mut q = [0i32; 256];
                let sm = unpack_k45(f, b, &mut q);
                let (d, dmin) = (f16_at(b, 0), f16_at(b, 2));
                for (j, &(sc, m)) in sm.iter().enumerate() {
                    for i in 32 * j..32 * (j + 1) {
                        y[i] = d * sc as f32 * q[i] as f32 - dmin * m as f32;
                    }
                }
            }
            Format::Q6K => {
                let mut q = [0i32; 256];
                let sc = unpack_q6k(b, &mut q);
                let d = f16_at(b, 208);
                for (i, v) in y.iter_mut().enumerate() {
                    *v = d * sc[i / 16] as f32 * q[i] as f32;
                }
            }
            _ => {
                let mut q = [0i32; 32];
                let (d, m) = unpack32(f, b, &mut q);
                for (v, &qi) in y.iter_mut().zip(&q) {
                    *v = d * qi as f32 + m;
                }
            }
        }
    }
}

/// One row of 32-weight blocks against activations quantised per 32.
pub(crate) fn dot32(f: Format, row: &[u8], a: Act32<'_>) -> f32 {
    let mut q = [0i32; 32];
    let mut total = 0f32;
    for (i, b) in row.chunks_exact(f.block_bytes()).enumerate() {
        let (d, m) = unpack32(f, b, &mut q);
        let qa = &a.q[32 * i..32 * (i + 1)];
        let s: i32 = q.iter().zip(qa).map(|(&x, &y)| x * y as i32).sum();
        // The min meets the block's sum s_a = d_a * sum(q_a), as in llama.cpp's Q8_1.
        total += d * a.d[i] * s as f32 + m * a.s[i];
    }
    total
}

/// One row of 256-weight blocks against activations quantised per 256.
pub(crate) fn dot256(f: Format, row: &[u8], a: Act256<'_>) -> f32 {
    let mut q = [0i32; 256];
    let mut total = 0f32;
    for (i, b) in row.chunks_exact(f.block_bytes()).enumerate() {
        let qa = &a.q[256 * i..256 * (i + 1)];
        let bsums = &a.bsums[16 * i..16 * (i + 1)];
        if f == Format::Q6K {
            let sc = unpack_q6k(b, &mut q);
            let mut s = 0i32;
            for (j, &scale) in sc.iter().enumerate() {
                let part: i32 = (16 * j..16 * (j + 1)).map(|l| q[l] * qa[l] as i32).sum();
                s += scale as i32 * part;
            }
            total += f16_at(b, 208) * a.d[i] * s as f32;
            continue;
        }
        let sm = unpack_k45(f, b, &mut q);
        let (mut s, mut mins) = (0i32, 0i32);
        for (j, &(sc, m)) in sm.iter().enumerate() {
            let part: i32 = (32 * j..32 * (j + 1)).map(|l| q[l] * qa[l] as i32).sum();
            s += sc as i32 * part;
            mins += m as i32 * (bsums[2 * j] as i32 + bsums[2 * j + 1] as i32);
        }
        total += a.d[i] * (f16_at(b, 0) * s as f32 - f16_at(b, 2) * mins as f32);
    }
    total
}
