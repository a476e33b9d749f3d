//! Activations in one vectorised pass.
//!
//! candle computes `x * sigmoid(1.702 x)` as three passes with a scalar `expf` each and
//! `gelu_erf` with a scalar `erff`; together they took about a fifth of CLIP's image tower
//! and a tenth of Whisper's encoder.

use crate::math::{erf, exp};
use crate::on_cpu_f32;
use crate::parallel::{chunk_len, for_chunks};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use std::marker::PhantomData;

/// `x * sigmoid(1.702 x)`, transformers' `quick_gelu`.
pub fn quick_gelu(xs: &Tensor) -> Result<Tensor> {
    if on_cpu_f32(xs) {
        xs.contiguous()?
            .apply_op1_no_bwd(&Map::<QuickGelu>(PhantomData))
    } else {
        xs * candle_nn::ops::sigmoid(&(xs * 1.702)?)?
    }
}

/// `x * Φ(x)` with the exact (erf) normal CDF, like `Tensor::gelu_erf`.
pub fn gelu_erf(xs: &Tensor) -> Result<Tensor> {
    if on_cpu_f32(xs) {
        xs.contiguous()?
            .apply_op1_no_bwd(&Map::<GeluErf>(PhantomData))
    } else {
        xs.gelu_erf()
    }
}

trait Elementwise {
    const NAME: &'static str;
    fn f(x: f32) -> f32;
}

struct QuickGelu;

impl Elementwise for QuickGelu {
    const NAME: &'static str = "quick-gelu";
    #[inline(always)]
    fn f(x: f32) -> f32 {
        x / (1.0 + exp(-1.702 * x))
    }
}

struct GeluErf;

impl Elementwise for GeluErf {
    const NAME: &'static str = "gelu-erf";
    #[inline(always)]
    fn f(x: f32) -> f32 {
        0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
    }
}

struct Map<E>(PhantomData<E>);

impl<E: Elementwise> CustomOp1 for Map<E> {
    fn name(&self) -> &'static str {
        E::NAME
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("{}: f32 only", E::NAME);
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: contiguous input only", E::NAME);
        };
        let xs = &data[start..end];
        let mut out = vec![0f32; xs.len()];
        let chunk = chunk_len(xs.len(), 1, 1, 1 << 15);
        for_chunks(&mut out, chunk, |first, out| map::<E>(&xs[first..], out));
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// `out[i] = E::f(xs[i])`, compiled for AVX2 and FMA where the CPU has them (by hand rather
/// than `simd::multiversion!`, which takes no type parameters).
fn map<E: Elementwise>(xs: &[f32], out: &mut [f32]) {
    #[inline(always)]
    fn body<E: Elementwise>(xs: &[f32], out: &mut [f32]) {
        for (o, &x) in out.iter_mut().zip(xs) {
            *o = E::f(x);
        }
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn avx2<E: Elementwise>(xs: &[f32], out: &mut [f32]) {
        body::<E>(xs, out)
    }
    #[cfg(target_arch = "x86_64")]
    if crate::quant::kernels().has_avx2() {
        // SAFETY: `Kernels::Avx2` and `Avx512` are only chosen where the CPU has AVX2, FMA
        // and F16C.
        return unsafe { avx2::<E>(xs, out) };
    }
    body::<E>(xs, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.max_all())
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap_or(f32::INFINITY)
    }

    #[test]
    fn activations_match_candles_ops() -> Result<()> {
        let xs = Tensor::randn(0f32, 4.0, (3, 70_001), &Device::Cpu)?;
        let slow = (&xs * candle_nn::ops::sigmoid(&(&xs * 1.702)?)?)?;
        assert!(max_diff(&quick_gelu(&xs)?, &slow) < 1e-5);
        assert!(max_diff(&gelu_erf(&xs)?, &xs.gelu_erf()?) < 2e-5);
        // A strided view is made contiguous first and gives the same numbers.
        assert!(max_diff(&quick_gelu(&xs.t()?)?, &slow.t()?) < 1e-5);
        // Other dtypes take candle's own path.
        let h = xs.to_dtype(DType::F64)?;
        assert_eq!(quick_gelu(&h)?.dtype(), DType::F64);
        Ok(())
    }
}
