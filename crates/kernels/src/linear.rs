//! A linear layer whose few-row products run as a parallel, vectorised gemv.
//!
//! Decoding feeds one token (or one per beam) at a time, so every projection is a
//! `[rows <= 8, k] x [k, n]` product. candle hands those to gemm's single-threaded
//! fallback; here each thread takes a band of the weight's rows and dots them with
//! every input row, reading the weights once.
//!
//! [`Linear::into_q8`] keeps the weights as Q8_0 instead (a quarter of the bytes a token
//! reads) and runs every product on [`crate::quant`]'s integer kernels.

use crate::math::dot;
use crate::on_cpu_f32;
use crate::parallel::{chunk_len, for_chunks};
use crate::quant::{Format, QInput, QMatrix};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Module, Result, Shape, Tensor};
use std::sync::Arc;

/// Inputs with more rows than this go to candle's gemm, which blocks for cache reuse.
const MAX_ROWS: usize = 8;

/// `y = x W^T + b` with `W` stored `[out, in]`, like `candle_nn::Linear`.
#[derive(Clone, Debug)]
pub struct Linear {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    F32(candle_nn::Linear),
    /// After [`Linear::into_q8`]: the Q8_0 weights alone (the f32 ones are dropped).
    Q8(Arc<Q8Linear>),
}

/// The Q8_0 form of a layer: its weights quantised by candle's own Q8_0 quantiser.
#[derive(Debug)]
struct Q8Linear {
    w: QMatrix,
    bias: Option<Vec<f32>>,
}

impl Linear {
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        candle_nn::Linear::new(weight, bias).into()
    }

    /// The same layer with Q8_0 weights (one f32 scale per 32), on the CPU: what CTranslate2
    /// calls int8. The f32 weights are dropped; inputs of other dtypes are computed in f32
    /// and converted back. Layers on other devices, or whose input width is not a whole
    /// number of blocks, are returned unchanged.
    pub fn into_q8(self) -> Result<Self> {
        let Inner::F32(layer) = &self.inner else {
            return Ok(self);
        };
        let w = layer.weight();
        let (n, k) = w.dims2()?;
        if !w.device().is_cpu() || k % 32 != 0 {
            return Ok(self);
        }
        // `QTensor::quantize` reads the storage from its start, so a view (one of a fused QKV
        // matrix's thirds) is copied first; a whole f32 matrix (Whisper's 80 MB vocabulary)
        // is quantised where it lies.
        let w = w.to_dtype(DType::F32)?;
        let w = if owns_its_storage(&w) {
            w
        } else {
            Tensor::from_vec(w.flatten_all()?.to_vec1::<f32>()?, (n, k), w.device())?
        };
        let q = QTensor::quantize(&w, GgmlDType::Q8_0)?;
        let w = QMatrix::new("linear", Format::Q8_0, n, k, q.data()?.into_owned())
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let bias = match layer.bias() {
            Some(b) => Some(b.to_dtype(DType::F32)?.to_vec1::<f32>()?),
            None => None,
        };
        Ok(Linear {
            inner: Inner::Q8(Arc::new(Q8Linear { w, bias })),
        })
    }

    /// Whether [`Linear::into_q8`] took.
    pub fn is_q8(&self) -> bool {
        matches!(self.inner, Inner::Q8(_))
    }

    /// The f32 layer's weight; `None` after [`Linear::into_q8`].
    pub fn weight(&self) -> Option<&Tensor> {
        match &self.inner {
            Inner::F32(l) => Some(l.weight()),
            Inner::Q8(_) => None,
        }
    }

    /// The f32 layer's bias; `None` without one or after [`Linear::into_q8`].
    pub fn bias(&self) -> Option<&Tensor> {
        match &self.inner {
            Inner::F32(l) => l.bias(),
            Inner::Q8(_) => None,
        }
    }
}

/// Whether `w` (f32 on the CPU) is the whole of its storage, from its start, in order.
fn owns_its_storage(w: &Tensor) -> bool {
    let (storage, layout) = w.storage_and_layout();
    let len = match &*storage {
        candle_core::Storage::Cpu(CpuStorage::F32(v)) => v.len(),
        _ => return false,
    };
    layout.is_contiguous() && layout.start_offset() == 0 && len == w.elem_count()
}

/// Whether the gemv takes `x` against `layer`.
fn takes_gemv(layer: &candle_nn::Linear, x: &Tensor) -> Result<bool> {
    let w = layer.weight();
    let (_, k) = w.dims2()?;
    let rows = x.elem_count() / k.max(1);
    Ok(on_cpu_f32(x)
        && on_cpu_f32(w)
        && w.is_contiguous()
        && x.dims().last() == Some(&k)
        && rows <= MAX_ROWS
        && layer
            .bias()
            .is_none_or(|b| on_cpu_f32(b) && b.is_contiguous()))
}

impl From<candle_nn::Linear> for Linear {
    fn from(layer: candle_nn::Linear) -> Self {
        Linear {
            inner: Inner::F32(layer),
        }
    }
}

impl Q8Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (n, k) = (self.w.rows(), self.w.cols());
        if x.dims().last() != Some(&k) {
            candle_core::bail!("linear: input {:?} for a layer of {k} inputs", x.dims());
        }
        let values = x
            .to_device(&candle_core::Device::Cpu)?
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let rows = values.len() / k;
        let mut out = vec![0f32; rows * n];
        self.w
            .matmul(&QInput::new(&values, k), &mut out)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        if let Some(b) = &self.bias {
            for row in out.chunks_mut(n) {
                for (o, b) in row.iter_mut().zip(b) {
                    *o += b;
                }
            }
        }
        let mut dims = x.dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        Tensor::from_vec(out, dims, &candle_core::Device::Cpu)?
            .to_dtype(x.dtype())?
            .to_device(x.device())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let layer = match &self.inner {
            Inner::Q8(q) => return q.forward(x),
            Inner::F32(layer) => layer,
        };
        if !takes_gemv(layer, x)? {
            return layer.forward(x);
        }
        let (n, k) = layer.weight().dims2()?;
        let mut dims = x.dims().to_vec();
        let rows = x.elem_count() / k;
        let x2 = x.contiguous()?.reshape((rows, k))?;
        let y = match layer.bias() {
            Some(b) => x2.apply_op3_no_bwd(layer.weight(), b, &Gemv)?,
            None => x2.apply_op2_no_bwd(layer.weight(), &Gemv)?,
        };
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        y.reshape(dims)
    }
}

struct Gemv;

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
    let b = bias
        .map(|(bs, bl)| crate::contiguous_f32("gemv bias", bs, bl))
        .transpose()?;
    if let Some(b) = b.filter(|b| b.len() != n) {
        candle_core::bail!("gemv: bias of {} for {n} outputs", b.len());
    }
    let (x, w) = (
        crate::contiguous_f32("gemv input", xs, xl)?,
        crate::contiguous_f32("gemv weight", ws, wl)?,
    );
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

    /// Q8_0 against the f32 layer: per output, the error is bounded by the weights' and the
    /// inputs' rounding (half a step of each block's scale), summed over the row.
    #[test]
    fn q8_is_within_its_rounding_of_f32_for_every_row_count() -> Result<()> {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 0.1, (96, 384), &dev)?;
        let b = Tensor::randn(0f32, 0.1, 96, &dev)?;
        for bias in [Some(b), None] {
            let f32_layer = Linear::new(w.clone(), bias.clone());
            let q8 = f32_layer.clone().into_q8()?;
            assert!(q8.is_q8());
            for shape in [(1, 1, 384), (1, 5, 384), (2, 12, 384)] {
                let x = Tensor::randn(0f32, 1.0, shape, &dev)?;
                let (a, c) = (q8.forward(&x)?, f32_layer.forward(&x)?);
                assert_eq!(a.dims(), c.dims());
                let d = (&a - &c)?.abs()?.max_all()?.to_scalar::<f32>()?;
                let scale = c.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(d > 0.0 && d < 0.02 * scale, "{shape:?}: {d} of {scale}");
            }
        }
        // A view into a larger matrix (as a fused QKV's thirds are) quantises its own rows.
        let fused = Tensor::randn(0f32, 0.1, (3 * 96, 384), &dev)?;
        // The first third too: it starts at the storage's start but is not all of it.
        for start in [0, 96] {
            let third = Linear::new(fused.narrow(0, start, 96)?, None);
            let x = Tensor::randn(0f32, 1.0, (3, 384), &dev)?;
            let (a, c) = (third.clone().into_q8()?.forward(&x)?, third.forward(&x)?);
            let d = (&a - &c)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(
                d < 0.02 * c.abs()?.max_all()?.to_scalar::<f32>()?,
                "view: {d}"
            );
        }
        // A width that is not whole blocks stays f32, and so do f64 inputs.
        let odd = Linear::new(Tensor::randn(0f32, 0.1, (4, 33), &dev)?, None).into_q8()?;
        assert!(!odd.is_q8());
        let x = Tensor::randn(0f64, 1.0, (2, 384), &dev)?;
        let w64 = Linear::new(w.to_dtype(DType::F64)?, None).into_q8()?;
        assert_eq!(w64.forward(&x)?.dims(), &[2, 96]);
        Ok(())
    }
}
