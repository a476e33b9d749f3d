//! A linear layer whose few-row products run as a parallel, vectorised gemv.
//!
//! Decoding feeds one token (or one per beam) at a time, so every projection is a
//! `[rows <= 8, k] x [k, n]` product. candle hands those to gemm's single-threaded
//! fallback; here each thread takes a band of the weight's rows and dots them with
//! every input row, reading the weights once.

use crate::math::dot;
use crate::on_cpu_f32;
use crate::parallel::{chunk_len, for_chunks};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Module, Result, Shape, Tensor};

/// Inputs with more rows than this go to candle's gemm, which blocks for cache reuse.
const MAX_ROWS: usize = 8;

/// `y = x W^T + b` with `W` stored `[out, in]`, like `candle_nn::Linear`.
#[derive(Clone, Debug)]
pub struct Linear {
    inner: candle_nn::Linear,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Linear {
            inner: candle_nn::Linear::new(weight, bias),
        }
    }

    pub fn weight(&self) -> &Tensor {
        self.inner.weight()
    }

    pub fn bias(&self) -> Option<&Tensor> {
        self.inner.bias()
    }

    fn takes_gemv(&self, x: &Tensor) -> Result<bool> {
        let w = self.weight();
        let (_, k) = w.dims2()?;
        let rows = x.elem_count() / k.max(1);
        Ok(on_cpu_f32(x)
            && on_cpu_f32(w)
            && w.is_contiguous()
            && x.dims().last() == Some(&k)
            && rows <= MAX_ROWS
            && self
                .bias()
                .is_none_or(|b| on_cpu_f32(b) && b.is_contiguous()))
    }
}

impl From<candle_nn::Linear> for Linear {
    fn from(inner: candle_nn::Linear) -> Self {
        Linear { inner }
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if !self.takes_gemv(x)? {
            return self.inner.forward(x);
        }
        let (n, k) = self.weight().dims2()?;
        let mut dims = x.dims().to_vec();
        let rows = x.elem_count() / k;
        let x2 = x.contiguous()?.reshape((rows, k))?;
        let y = match self.bias() {
            Some(b) => x2.apply_op3_no_bwd(self.weight(), b, &Gemv)?,
            None => x2.apply_op2_no_bwd(self.weight(), &Gemv)?,
        };
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        y.reshape(dims)
    }
}

struct Gemv;

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> Result<&'a [f32]> {
    let CpuStorage::F32(data) = s else {
        candle_core::bail!("gemv {what}: f32 only");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("gemv {what}: contiguous only");
    };
    Ok(&data[start..end])
}

crate::simd::multiversion! {
    /// Output rows `j0..` of the band (`rows` values each, one per input row).
    fn gemv_band(
        x: &[f32],
        w: &[f32],
        k: usize,
        bias: Option<&[f32]>,
        j0: usize,
        band: &mut [f32],
        rows: usize,
    ) {
        for (dj, outs) in band.chunks_mut(rows).enumerate() {
            let j = j0 + dj;
            let wr = &w[j * k..(j + 1) * k];
            let b = bias.map_or(0.0, |b| b[j]);
            for (i, o) in outs.iter_mut().enumerate() {
                *o = dot(&x[i * k..(i + 1) * k], wr) + b;
            }
        }
    }
}

fn gemv(x: &[f32], rows: usize, w: &[f32], n: usize, bias: Option<&[f32]>) -> (CpuStorage, Shape) {
    let k = w.len() / n.max(1);
    // Output-major ([n, rows]) so each task owns a contiguous band.
    let mut out_t = vec![0f32; n * rows];
    let chunk = chunk_len(n, rows, rows * k, 1 << 15);
    for_chunks(&mut out_t, chunk, |first, band| {
        gemv_band(x, w, k, bias, first / rows, band, rows)
    });
    let out = if rows == 1 {
        out_t
    } else {
        let mut out = vec![0f32; n * rows];
        for j in 0..n {
            for i in 0..rows {
                out[i * n + j] = out_t[j * rows + i];
            }
        }
        out
    };
    (CpuStorage::F32(out), Shape::from((rows, n)))
}

/// Both arities: the layouts are checked, the bias (if any) must have one value per output.
fn gemv_op(
    xs: &CpuStorage,
    xl: &Layout,
    ws: &CpuStorage,
    wl: &Layout,
    bias: Option<(&CpuStorage, &Layout)>,
) -> Result<(CpuStorage, Shape)> {
    let (rows, _) = xl.shape().dims2()?;
    let (n, _) = wl.shape().dims2()?;
    let b = bias.map(|(bs, bl)| slice(bs, bl, "bias")).transpose()?;
    if let Some(b) = b.filter(|b| b.len() != n) {
        candle_core::bail!("gemv: bias of {} for {n} outputs", b.len());
    }
    let (x, w) = (slice(xs, xl, "input")?, slice(ws, wl, "weight")?);
    Ok(gemv(x, rows, w, n, b))
}

impl CustomOp2 for Gemv {
    fn name(&self) -> &'static str {
        "gemv"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        gemv_op(xs, xl, ws, wl, None)
    }
}

impl CustomOp3 for Gemv {
    fn name(&self) -> &'static str {
        "gemv-bias"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        gemv_op(xs, xl, ws, wl, Some((bs, bl)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matches_candles_linear_for_every_row_count() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.1, (1536, 384), &dev)?;
        let b = Tensor::randn(0f32, 0.1, 1536, &dev)?;
        for bias in [Some(b), None] {
            let ours = Linear::new(w.clone(), bias.clone());
            let theirs = candle_nn::Linear::new(w.clone(), bias);
            for shape in [(1, 1, 384), (5, 1, 384), (1, 3, 384), (2, 12, 384)] {
                let x = Tensor::randn(0f32, 1.0, shape, &dev)?;
                let (a, c) = (ours.forward(&x)?, theirs.forward(&x)?);
                assert_eq!(a.dims(), c.dims());
                let d = (a - c)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(d < 1e-4, "{shape:?}: {d}");
            }
        }
        Ok(())
    }
}
