//! Attention of every query position over every key without a mask: Whisper's encoder.
//!
//! As candle ops that is a `[1500, 64] x [64, 1500]` product per head written out in full
//! (6 x 1500 x 1500 floats, 54 MB per layer for tiny), a softmax that reads and writes it
//! again, and a second product that reads it once more. Here each task takes a block of
//! query rows of one head: their scores (a few hundred KiB, in cache), the softmax on them,
//! and their share of the output, so the score matrix never reaches memory. The heads are
//! read straight from the projections' `[b, t, heads * dh]` layout and written back in it,
//! with no split or merge copies.

use crate::on_cpu_f32;
use crate::softmax::softmax_in_place;
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Query rows per task: the scores of 32 rows over 1500 keys are 188 KiB.
const BLOCK: usize = 32;
/// Keys per score tile and head values per output tile; the query rows per tile depend
/// on the registers the build has (see [`attend_block`]).
const KC: usize = 16;
const OC: usize = 32;

/// `softmax(q_h k_h^T * scale) v_h` for every head `h`, where `q` is `[b, tq, heads * dh]`
/// and `k`, `v` are `[b, tk, heads * dh]` (head `h` in columns `h * dh..(h + 1) * dh`, as a
/// projection writes them); the result is `[b, tq, heads * dh]` in the same layout.
pub fn attend_all(q: &Tensor, k: &Tensor, v: &Tensor, heads: usize, scale: f64) -> Result<Tensor> {
    let (b, tq, d) = q.dims3()?;
    let fused = [q, k, v].iter().all(|t| on_cpu_f32(t))
        && fused_cpu()
        && heads > 0
        && d.is_multiple_of(heads)
        && (d / heads).is_multiple_of(OC);
    if !fused {
        let split = |x: &Tensor| -> Result<Tensor> {
            let (b, t, d) = x.dims3()?;
            x.reshape((b, t, heads, d / heads.max(1)))?
                .transpose(1, 2)?
                .contiguous()
        };
        let w = (split(q)? * scale)?.matmul(&split(k)?.t()?)?;
        let o = crate::softmax_last_dim(&w)?.matmul(&split(v)?)?;
        return o.transpose(1, 2)?.reshape((b, tq, d));
    }
    let (q, k, v) = (q.contiguous()?, k.contiguous()?, v.contiguous()?);
    q.apply_op3_no_bwd(
        &k,
        &v,
        &AttendAll {
            heads,
            scale: scale as f32,
        },
    )
}

/// Whether the tiles below compile to SIMD with fused multiply-adds here: without FMA,
/// `mul_add` is a library call per product and candle's matmul is faster.
fn fused_cpu() -> bool {
    crate::quant::kernels().has_avx2() || cfg!(target_arch = "aarch64")
}

struct AttendAll {
    heads: usize,
    scale: f32,
}

impl CustomOp3 for AttendAll {
    fn name(&self) -> &'static str {
        "attend-all"
    }

    fn cpu_fwd(
        &self,
        qs: &CpuStorage,
        ql: &Layout,
        ks: &CpuStorage,
        kl: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (b, tq, d) = ql.shape().dims3()?;
        let (kb, tk, kd) = kl.shape().dims3()?;
        if (kb, kd) != (b, d) || vl.shape().dims3()? != (b, tk, d) || tk == 0 {
            candle_core::bail!(
                "attend-all: q {:?}, k {:?}, v {:?}",
                ql.dims(),
                kl.dims(),
                vl.dims()
            );
        }
        let slice = |s, l| crate::contiguous_f32("attend-all", s, l);
        let (q, k, v) = (slice(qs, ql)?, slice(ks, kl)?, slice(vs, vl)?);
        let (heads, dh) = (self.heads, d / self.heads);
        // Each head's keys transposed ([dh, tk]), so a score tile reads 16 keys' values of
        // one dimension as one contiguous run.
        let mut kt = vec![0f32; b * heads * dh * tk];
        kt.par_chunks_mut(dh * tk)
            .enumerate()
            .for_each(|(bh, dst)| {
                let (bi, col) = (bh / heads, (bh % heads) * dh);
                for j in 0..tk {
                    let row = &k[(bi * tk + j) * d + col..][..dh];
                    for (c, &x) in row.iter().enumerate() {
                        dst[c * tk + j] = x;
                    }
                }
            });
        // Head-major output ([b, heads, tq, dh]), so each task owns one contiguous block.
        let mut out_h = vec![0f32; b * heads * tq * dh];
        out_h
            .par_chunks_mut(tq * dh)
            .enumerate()
            .for_each(|(bh, head_out)| {
                let (bi, col) = (bh / heads, (bh % heads) * dh);
                let head = Head {
                    q: &q[bi * tq * d..(bi + 1) * tq * d],
                    kt: &kt[bh * dh * tk..(bh + 1) * dh * tk],
                    v: &v[bi * tk * d..(bi + 1) * tk * d],
                    d,
                    dh,
                    col,
                    tk,
                    scale: self.scale,
                };
                head_out
                    .par_chunks_mut(BLOCK * dh)
                    .enumerate()
                    .for_each_init(Scratch::default, |s, (i, o)| {
                        attend_block(&head, i * BLOCK, o, s)
                    });
            });
        let mut out = vec![0f32; b * tq * d];
        for (bh, head_out) in out_h.chunks_exact(tq * dh).enumerate() {
            let (bi, col) = (bh / heads, (bh % heads) * dh);
            for (t, row) in head_out.chunks_exact(dh).enumerate() {
                out[(bi * tq + t) * d + col..][..dh].copy_from_slice(row);
            }
        }
        Ok((CpuStorage::F32(out), Shape::from((b, tq, d))))
    }
}

/// One head of one batch item.
struct Head<'a> {
    /// `[tq, d]`: every head's queries.
    q: &'a [f32],
    /// `[dh, tk]`: this head's keys, transposed.
    kt: &'a [f32],
    /// `[tk, d]`: every head's values.
    v: &'a [f32],
    d: usize,
    dh: usize,
    /// This head's first column in `q` and `v`.
    col: usize,
    tk: usize,
    scale: f32,
}

#[derive(Default)]
struct Scratch {
    scores: Vec<f32>,
    /// The tile's query rows, scaled; rows past the block's end are zeros.
    qb: Vec<f32>,
}

/// Output rows `i0..` of one head (`o` holds `o.len() / dh` of them). With AVX-512 the
/// score tiles take twice the query rows (32 vector registers hold their sums); the body
/// is the same code, compiled per build. (Four-row output tiles there were slower: LLVM
/// left part of them scalar.)
fn attend_block(h: &Head<'_>, i0: usize, o: &mut [f32], s: &mut Scratch) {
    #[cfg(target_arch = "x86_64")]
    {
        use crate::quant::{kernels, Kernels};
        match kernels() {
            // SAFETY: `Kernels::Avx512` is only chosen where the CPU has AVX-512 F, BW, VL
            // (and VNNI) with AVX2, FMA and F16C; `Avx2` where it has AVX2, FMA and F16C.
            Kernels::Avx512 => return unsafe { block_avx512(h, i0, o, s) },
            Kernels::Avx2 => return unsafe { block_avx2(h, i0, o, s) },
            _ => {}
        }
    }
    block::<4, 2>(h, i0, o, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block_avx2(h: &Head<'_>, i0: usize, o: &mut [f32], s: &mut Scratch) {
    block::<4, 2>(h, i0, o, s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c,avx512f,avx512bw,avx512vl")]
unsafe fn block_avx512(h: &Head<'_>, i0: usize, o: &mut [f32], s: &mut Scratch) {
    block::<8, 2>(h, i0, o, s)
}

/// [`attend_block`] with score tiles of `QR` query rows by [`KC`] keys and output tiles of
/// `OR` rows by [`OC`] head values (`QR` a multiple of `OR`).
#[inline(always)]
fn block<const QR: usize, const OR: usize>(
    h: &Head<'_>,
    i0: usize,
    o: &mut [f32],
    s: &mut Scratch,
) {
    let (dh, tk) = (h.dh, h.tk);
    let rows = o.len() / dh;
    // Rows past the block's end are scored from zero queries and never stored, so no tile
    // needs a shorter form.
    let padded = rows.div_ceil(QR) * QR;
    s.scores.resize(padded * tk, 0.0);
    s.qb.resize(QR * dh, 0.0);
    for r0 in (0..padded).step_by(QR) {
        for (r, dst) in s.qb.chunks_exact_mut(dh).enumerate() {
            if r0 + r < rows {
                let src = &h.q[(i0 + r0 + r) * h.d + h.col..][..dh];
                for (x, &y) in dst.iter_mut().zip(src) {
                    *x = y * h.scale;
                }
            } else {
                dst.fill(0.0);
            }
        }
        score_rows::<QR>(h, &s.qb, &mut s.scores[r0 * tk..(r0 + QR) * tk]);
    }
    for row in s.scores.chunks_exact_mut(tk) {
        softmax_in_place(row);
    }
    for r0 in (0..padded).step_by(OR) {
        let p: [&[f32]; OR] = std::array::from_fn(|r| &s.scores[(r0 + r) * tk..][..tk]);
        for c0 in (0..dh).step_by(OC) {
            let mut acc = [[0f32; OC]; OR];
            for (j, vrow) in h.v.chunks_exact(h.d).enumerate() {
                let vrow: &[f32; OC] = as_array(&vrow[h.col + c0..]);
                for r in 0..OR {
                    axpy(&mut acc[r], p[r][j], vrow);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                if r0 + r < rows {
                    o[(r0 + r) * dh + c0..][..OC].copy_from_slice(a);
                }
            }
        }
    }
}

/// `a += p * v`.
#[inline(always)]
fn axpy<const N: usize>(a: &mut [f32; N], p: f32, v: &[f32; N]) {
    for x in 0..N {
        a[x] = p.mul_add(v[x], a[x]);
    }
}

/// The first `N` values of `s` (which holds at least that many) as an array.
#[inline(always)]
fn as_array<const N: usize>(s: &[f32]) -> &[f32; N] {
    let (head, _) = s.split_at(N);
    head.try_into().unwrap_or_else(|_| unreachable!())
}

/// Scores of the `QR` scaled query rows in `qb` against every key, into `out` (`QR` rows
/// of `tk`).
#[inline(always)]
fn score_rows<const QR: usize>(h: &Head<'_>, qb: &[f32], out: &mut [f32]) {
    let (dh, tk) = (h.dh, h.tk);
    let mut j0 = 0;
    while j0 + KC <= tk {
        let mut acc = [[0f32; KC]; QR];
        for (c, keys) in h.kt.chunks_exact(tk).enumerate() {
            let keys: &[f32; KC] = as_array(&keys[j0..]);
            for (r, a) in acc.iter_mut().enumerate() {
                let qv = qb[r * dh + c];
                for x in 0..KC {
                    a[x] = qv.mul_add(keys[x], a[x]);
                }
            }
        }
        for (r, a) in acc.iter().enumerate() {
            out[r * tk + j0..][..KC].copy_from_slice(a);
        }
        j0 += KC;
    }
    for j in j0..tk {
        for r in 0..QR {
            out[r * tk + j] = (0..dh).map(|c| qb[r * dh + c] * h.kt[c * tk + j]).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// Against the unfused candle ops, on shapes with tails in every direction: query rows
    /// not a multiple of the block or the tile, keys not a multiple of 16.
    #[test]
    fn matches_the_unfused_ops() -> Result<()> {
        assert!(fused_cpu() || !cfg!(target_arch = "x86_64"));
        let dev = Device::Cpu;
        for (b, tq, tk, heads, dh) in [(1, 70, 45, 6, 64), (2, 5, 16, 2, 32), (1, 33, 1, 1, 64)] {
            let d = heads * dh;
            let q = Tensor::randn(0f32, 1.0, (b, tq, d), &dev)?;
            let k = Tensor::randn(0f32, 1.0, (b, tk, d), &dev)?;
            let v = Tensor::randn(0f32, 1.0, (b, tk, d), &dev)?;
            let scale = 1.0 / (dh as f64).sqrt();
            let ours = attend_all(&q, &k, &v, heads, scale)?;
            let split = |x: &Tensor| -> Result<Tensor> {
                let (b, t, _) = x.dims3()?;
                x.reshape((b, t, heads, dh))?.transpose(1, 2)?.contiguous()
            };
            let w = (split(&q)? * scale)?.matmul(&split(&k)?.t()?)?;
            let o = candle_nn::ops::softmax_last_dim(&w)?.matmul(&split(&v)?)?;
            let want = o.transpose(1, 2)?.reshape((b, tq, d))?;
            assert_eq!(ours.dims(), want.dims());
            let err = (ours - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(err < 1e-4, "{b} {tq} {tk} {heads} {dh}: {err}");
        }
        Ok(())
    }

    #[test]
    fn mismatched_shapes_are_errors() -> Result<()> {
        let dev = Device::Cpu;
        let q = Tensor::zeros((1, 4, 64), candle_core::DType::F32, &dev)?;
        let k = Tensor::zeros((1, 5, 64), candle_core::DType::F32, &dev)?;
        let v = Tensor::zeros((1, 6, 64), candle_core::DType::F32, &dev)?;
        assert!(attend_all(&q, &k, &v, 1, 1.0).is_err());
        Ok(())
    }
}
