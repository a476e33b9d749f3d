//! `x = act(x + bias[c] (+ residual))` in place, one pass over a fresh conv output.
//!
//! Unfused, candle spends three passes and two new buffers on this (a broadcast add,
//! then `clamp` as a maximum and a minimum); after the 1x1 convolutions, whose outputs
//! are the network's largest tensors, that cost more than the matmuls. Off the CPU, or
//! for other dtypes, the same candle ops run instead.

use candle_core::{CpuStorage, DType, Device, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

/// `x` [..., c] channels-last (contiguous, not shared with any other live tensor),
/// `bias` [c], `residual` shaped like `x`. Returns `x`, updated in place on the CPU.
pub fn bias_act(
    x: Tensor,
    bias: &Tensor,
    residual: Option<&Tensor>,
    relu6: bool,
) -> Result<Tensor> {
    let on_cpu = matches!(x.device(), Device::Cpu);
    let f32s = x.dtype() == DType::F32 && bias.dtype() == DType::F32;
    let res_ok = residual.is_none_or(|r| r.dtype() == DType::F32 && r.dims() == x.dims());
    if !(on_cpu && f32s && res_ok && x.is_contiguous()) {
        return reference(&x, bias, residual, relu6);
    }
    let op = BiasAct { relu6 };
    let bias = bias.contiguous()?;
    match residual {
        Some(r) => x.inplace_op3(&bias, &r.contiguous()?, &op)?,
        None => x.inplace_op2(&bias, &op)?,
    }
    Ok(x)
}

/// The same computation with candle's ops.
pub fn reference(
    x: &Tensor,
    bias: &Tensor,
    residual: Option<&Tensor>,
    relu6: bool,
) -> Result<Tensor> {
    let mut y = x.broadcast_add(bias)?;
    if let Some(r) = residual {
        y = (y + r)?;
    }
    if relu6 {
        y = y.clamp(0f32, 6f32)?;
    }
    Ok(y)
}

struct BiasAct {
    relu6: bool,
}

impl BiasAct {
    fn run(
        &self,
        x: &mut CpuStorage,
        xl: &Layout,
        bias: &[f32],
        res: Option<&[f32]>,
    ) -> Result<()> {
        let CpuStorage::F32(data) = x else {
            candle_core::bail!("bias-act: f32 only");
        };
        let Some((start, end)) = xl.contiguous_offsets() else {
            candle_core::bail!("bias-act: contiguous input only");
        };
        let c = bias.len();
        let xs = &mut data[start..end];
        if xl.dims().last() != Some(&c) || res.is_some_and(|r| r.len() != xs.len()) {
            candle_core::bail!("bias-act: {:?} with {c} biases", xl.dims());
        }
        let (lo, hi) = if self.relu6 {
            (0f32, 6f32)
        } else {
            (f32::NEG_INFINITY, f32::INFINITY)
        };
        // Rows of channels, in chunks big enough to be worth a task.
        let rows_per_task = (1 << 14) / c.max(1) + 1;
        let chunk = rows_per_task * c.max(1);
        xs.par_chunks_mut(chunk).enumerate().for_each(|(t, part)| {
            let first = t * chunk;
            for (j, row) in part.chunks_exact_mut(c.max(1)).enumerate() {
                let at = first + j * c;
                match res {
                    Some(r) => {
                        for ((v, &b), &a) in row.iter_mut().zip(bias).zip(&r[at..at + c]) {
                            *v = (*v + b + a).clamp(lo, hi);
                        }
                    }
                    None => {
                        for (v, &b) in row.iter_mut().zip(bias) {
                            *v = (*v + b).clamp(lo, hi);
                        }
                    }
                }
            }
        });
        Ok(())
    }
}

fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(d), Some((a, b))) => Ok(&d[a..b]),
        _ => candle_core::bail!("bias-act: contiguous f32 operands only"),
    }
}

impl InplaceOp2 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-act"
    }

    fn cpu_fwd(&self, x: &mut CpuStorage, xl: &Layout, b: &CpuStorage, bl: &Layout) -> Result<()> {
        self.run(x, xl, f32_slice(b, bl)?, None)
    }
}

impl InplaceOp3 for BiasAct {
    fn name(&self) -> &'static str {
        "bias-add-act"
    }

    fn cpu_fwd(
        &self,
        x: &mut CpuStorage,
        xl: &Layout,
        b: &CpuStorage,
        bl: &Layout,
        r: &CpuStorage,
        rl: &Layout,
    ) -> Result<()> {
        self.run(x, xl, f32_slice(b, bl)?, Some(f32_slice(r, rl)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_candles_ops() -> Result<()> {
        let dev = Device::Cpu;
        let b = Tensor::randn(0f32, 1.0, 5, &dev)?;
        for relu6 in [false, true] {
            for with_res in [false, true] {
                let x = (Tensor::randn(0f32, 1.0, (2, 3, 7, 5), &dev)? * 4.0)?;
                let r = Tensor::randn(0f32, 1.0, (2, 3, 7, 5), &dev)?;
                let res = with_res.then_some(&r);
                let want = reference(&x, &b, res, relu6)?;
                let got = bias_act(x.copy()?, &b, res, relu6)?;
                let diff = (got - want)?
                    .abs()?
                    .flatten_all()?
                    .max(0)?
                    .to_scalar::<f32>()?;
                assert!(diff < 1e-6, "relu6 {relu6} residual {with_res}: {diff}");
            }
        }
        Ok(())
    }
}
