//! Softmax over the last dimension, one row per task chunk.

use crate::math::{exp, max, sum};
use crate::on_cpu_f32;
use crate::parallel::{chunk_len, for_chunks};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

/// Like `candle_nn::ops::softmax_last_dim`, with a vectorised exponential and rows
/// spread over threads (Whisper's encoder has 6 x 1500 rows of 1500 per layer).
pub fn softmax_last_dim(xs: &Tensor) -> Result<Tensor> {
    if on_cpu_f32(xs) && xs.rank() > 0 {
        xs.contiguous()?.apply_op1_no_bwd(&Softmax)
    } else {
        candle_nn::ops::softmax_last_dim(xs)
    }
}

/// Softmax of `row` in place; an all `-inf` row becomes zeros rather than NaN. Inlined, so
/// that it takes its caller's CPU features (see `simd`).
#[inline(always)]
pub(crate) fn softmax_in_place(row: &mut [f32]) {
    let m = max(row);
    if m == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    for x in row.iter_mut() {
        *x = exp(*x - m);
    }
    let inv = 1.0 / sum(row);
    for x in row.iter_mut() {
        *x *= inv;
    }
}

crate::simd::multiversion! {
    /// Softmax of each row of `dim` values in `rows`.
    fn softmax_rows(rows: &mut [f32], dim: usize) {
        for row in rows.chunks_mut(dim) {
            softmax_in_place(row);
        }
    }
}

struct Softmax;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("softmax: f32 only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("softmax: contiguous input only");
        };
        let dim = layout.dims().last().copied().unwrap_or(1).max(1);
        let mut out = data[start..end].to_vec();
        let chunk = chunk_len(out.len() / dim, dim, dim, 1 << 14);
        for_chunks(&mut out, chunk, |_, rows| softmax_rows(rows, dim));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_candle() -> Result<()> {
        for shape in [(2usize, 3usize, 1500usize), (1, 1, 7), (5, 9, 64)] {
            let xs = (Tensor::randn(0f32, 3.0, shape, &Device::Cpu)? * 4.0)?;
            let d = (softmax_last_dim(&xs)? - candle_nn::ops::softmax_last_dim(&xs)?)?
                .abs()?
                .max_all()?
                .to_scalar::<f32>()?;
            assert!(d < 1e-6, "{shape:?}: {d}");
        }
        let mut masked = vec![f32::NEG_INFINITY; 4];
        softmax_in_place(&mut masked);
        assert_eq!(masked, vec![0.0; 4]);
        Ok(())
    }
}
