//! Depthwise convolution (one k x k filter per channel) with bias, as one CPU pass.
//!
//! candle runs a grouped convolution as one full convolution per group: for a
//! 1152-channel layer that is 1152 im2col copies and 1152 tiny matmuls, most of the
//! network's time. Here each (image, channel) plane is convolved directly, planes in
//! parallel on rayon's pool. Other devices and dtypes take candle's own conv2d, so the
//! model stays device-agnostic; the test below holds both paths to the same numbers.

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

/// `x` [n, c, h, w], `weight` [c, 1, k, k], `bias` [c]; `pad` = [top, bottom, left, right].
pub fn conv(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: [usize; 4],
) -> Result<Tensor> {
    let on_cpu = matches!(x.device(), Device::Cpu);
    let f32s = [x, weight, bias].iter().all(|t| t.dtype() == DType::F32);
    if !(on_cpu && f32s) {
        return reference(x, weight, bias, stride, pad);
    }
    let (x, weight, bias) = (x.contiguous()?, weight.contiguous()?, bias.contiguous()?);
    x.apply_op3_no_bwd(&weight, &bias, &Depthwise { stride, pad })
}

/// candle's grouped conv2d: the path for GPUs, and the yardstick in tests.
pub fn reference(
    x: &Tensor,
    weight: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: [usize; 4],
) -> Result<Tensor> {
    let c = x.dim(1)?;
    let x = x
        .pad_with_zeros(D::Minus2, pad[0], pad[1])?
        .pad_with_zeros(D::Minus1, pad[2], pad[3])?;
    let y = x.conv2d(weight, 0, stride, 1, c)?;
    y.broadcast_add(&bias.reshape((1, c, 1, 1))?)
}

struct Depthwise {
    stride: usize,
    pad: [usize; 4],
}

fn slice<'a>(d: &'a [f32], l: &Layout) -> Result<&'a [f32]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&d[a..b]),
        None => candle_core::bail!("depthwise-conv2d: contiguous input only"),
    }
}

/// The geometry of one plane's convolution.
#[derive(Clone, Copy)]
struct Plane {
    h: usize,
    w: usize,
    k: usize,
    stride: usize,
    top: usize,
    left: usize,
    oh: usize,
    ow: usize,
}

impl CustomOp3 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv2d"
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
        let (CpuStorage::F32(xd), CpuStorage::F32(wd), CpuStorage::F32(bd)) = (xs, ws, bs) else {
            candle_core::bail!("depthwise-conv2d: f32 only");
        };
        let (x, wt, bias) = (slice(xd, xl)?, slice(wd, wl)?, slice(bd, bl)?);
        let (n, c, h, w) = xl.shape().dims4()?;
        let (wc, one, k, k2) = wl.shape().dims4()?;
        if wc != c || one != 1 || k != k2 || bias.len() != c || self.stride == 0 {
            candle_core::bail!("depthwise-conv2d: weight {:?} for {c} channels", wl.dims());
        }
        let [top, bottom, left, right] = self.pad;
        let (ph, pw) = (h + top + bottom, w + left + right);
        if ph < k || pw < k {
            candle_core::bail!("depthwise-conv2d: kernel {k} larger than the padded input");
        }
        let p = Plane {
            h,
            w,
            k,
            stride: self.stride,
            top,
            left,
            oh: (ph - k) / self.stride + 1,
            ow: (pw - k) / self.stride + 1,
        };
        let mut out = vec![0f32; n * c * p.oh * p.ow];
        out.par_chunks_mut(p.oh * p.ow)
            .enumerate()
            .for_each(|(i, o)| {
                let ch = i % c;
                let input = &x[i * h * w..(i + 1) * h * w];
                plane(input, &wt[ch * k * k..(ch + 1) * k * k], bias[ch], p, o);
            });
        Ok((CpuStorage::F32(out), Shape::from((n, c, p.oh, p.ow))))
    }
}

/// One channel of one image: `out[oy, ox] = bias + sum w[ky, kx] * in[oy*s+ky-top, ox*s+kx-left]`
/// with zeros outside the input. Each tap adds a weighted input row segment to the
/// output row, so the stride-1 inner loop is a contiguous multiply-add that vectorises.
fn plane(input: &[f32], wk: &[f32], bias: f32, p: Plane, out: &mut [f32]) {
    let s = p.stride;
    // For tap kx, the output columns whose input column lies inside the row.
    let cols: Vec<(usize, usize)> = (0..p.k)
        .map(|kx| {
            let lo = p.left.saturating_sub(kx).div_ceil(s);
            let hi = (p.w + p.left).saturating_sub(kx).div_ceil(s).min(p.ow);
            (lo, hi.max(lo))
        })
        .collect();
    for (oy, orow) in out.chunks_exact_mut(p.ow).enumerate() {
        orow.fill(bias);
        for ky in 0..p.k {
            let Some(iy) = (oy * s + ky).checked_sub(p.top).filter(|&y| y < p.h) else {
                continue;
            };
            let irow = &input[iy * p.w..(iy + 1) * p.w];
            for (kx, &(lo, hi)) in cols.iter().enumerate() {
                let wv = wk[ky * p.k + kx];
                // First input column read: lo * s + kx - left, inside the row by `cols`.
                let first = lo * s + kx - p.left;
                if s == 1 {
                    let src = &irow[first..first + (hi - lo)];
                    for (o, &v) in orow[lo..hi].iter_mut().zip(src) {
                        *o += wv * v;
                    }
                } else {
                    for (o, &v) in orow[lo..hi].iter_mut().zip(irow[first..].iter().step_by(s)) {
                        *o += wv * v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .unwrap_or(f32::INFINITY)
    }

    #[test]
    fn matches_candles_grouped_conv() -> Result<()> {
        let dev = Device::Cpu;
        // Odd and even sizes, both strides, TF-style uneven padding and symmetric padding.
        for (h, w, k, stride, pad) in [
            (14, 14, 3, 1, [1, 1, 1, 1]),
            (15, 9, 5, 1, [2, 2, 2, 2]),
            (16, 16, 3, 2, [0, 1, 0, 1]),
            (13, 11, 5, 2, [2, 2, 1, 2]),
            (7, 7, 5, 1, [2, 2, 2, 2]),
            (5, 6, 3, 2, [1, 1, 1, 1]),
        ] {
            let c = 6;
            let x = Tensor::randn(0f32, 1.0, (2, c, h, w), &dev)?;
            let wt = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev)?;
            let b = Tensor::randn(0f32, 1.0, c, &dev)?;
            let fast = conv(&x, &wt, &b, stride, pad)?;
            let slow = reference(&x, &wt, &b, stride, pad)?;
            assert_eq!(fast.dims(), slow.dims(), "{h}x{w} k{k} s{stride}");
            assert!(
                max_diff(&fast, &slow) < 1e-5,
                "{h}x{w} k{k} s{stride} {pad:?}"
            );
        }
        // f64 takes candle's path and gives the same shape.
        let x = Tensor::randn(0f64, 1.0, (1, 2, 8, 8), &dev)?;
        let wt = Tensor::randn(0f64, 1.0, (2, 1, 3, 3), &dev)?;
        let b = Tensor::zeros(2, DType::F64, &dev)?;
        assert_eq!(conv(&x, &wt, &b, 2, [0, 1, 0, 1])?.dims(), &[1, 2, 4, 4]);
        Ok(())
    }
}
