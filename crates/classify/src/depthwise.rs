//! Depthwise convolution (one k x k filter per channel) on channels-last tensors, with the
//! bias and ReLU6 applied in the same CPU pass.
//!
//! candle runs a grouped convolution as one full convolution per group: for a
//! 1152-channel layer that is 1152 im2col copies and 1152 tiny matmuls, most of the
//! network's time. Channels-last, each tap is one multiply-add over a contiguous run of
//! channels, which vectorises whatever the image size (7x7 planes leave nothing to
//! vectorise channels-first). Other devices and dtypes take candle's grouped conv2d, so
//! the model stays device-agnostic; the test below holds both paths to the same numbers.

use candle_core::{CpuStorage, CustomOp3, DType, Device, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x` [n, h, w, c], `taps` [k * k, c] (tap-major), `bias` [c];
/// `pad` = [top, bottom, left, right]. Returns [n, oh, ow, c].
pub fn conv(
    x: &Tensor,
    taps: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: [usize; 4],
    relu6: bool,
) -> Result<Tensor> {
    let on_cpu = matches!(x.device(), Device::Cpu);
    if !(on_cpu && [x, taps, bias].iter().all(|t| t.dtype() == DType::F32)) {
        return reference(x, taps, bias, stride, pad, relu6);
    }
    let (x, taps, bias) = (x.contiguous()?, taps.contiguous()?, bias.contiguous()?);
    x.apply_op3_no_bwd(&taps, &bias, &Depthwise { stride, pad, relu6 })
}

/// candle's grouped conv2d (channels-first): the path for GPUs, and the yardstick in tests.
pub fn reference(
    x: &Tensor,
    taps: &Tensor,
    bias: &Tensor,
    stride: usize,
    pad: [usize; 4],
    relu6: bool,
) -> Result<Tensor> {
    let (kk, c) = taps.dims2()?;
    let k = (1..=kk).find(|k| k * k == kk).unwrap_or(0);
    let weight = taps.t()?.reshape((c, 1, k, k))?;
    let x = x
        .permute((0, 3, 1, 2))?
        .pad_with_zeros(2, pad[0], pad[1])?
        .pad_with_zeros(3, pad[2], pad[3])?;
    let y = x.conv2d(&weight, 0, stride, 1, c)?.permute((0, 2, 3, 1))?;
    crate::bias_act::reference(&y, bias, None, relu6)
}

struct Depthwise {
    stride: usize,
    pad: [usize; 4],
    relu6: bool,
}

fn slice<'a>(d: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (d, l.contiguous_offsets()) {
        (CpuStorage::F32(d), Some((a, b))) => Ok(&d[a..b]),
        _ => candle_core::bail!("depthwise-conv2d: contiguous f32 operands only"),
    }
}

impl CustomOp3 for Depthwise {
    fn name(&self) -> &'static str {
        "depthwise-conv2d-nhwc"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ts: &CpuStorage,
        tl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (x, taps, bias) = (slice(xs, xl)?, slice(ts, tl)?, slice(bs, bl)?);
        let (n, h, w, c) = xl.shape().dims4()?;
        let (kk, tc) = tl.shape().dims2()?;
        let k = (1..=kk).find(|k| k * k == kk).unwrap_or(0);
        if tc != c || k == 0 || bias.len() != c || self.stride == 0 {
            candle_core::bail!("depthwise-conv2d: taps {:?} for {c} channels", tl.dims());
        }
        let [top, bottom, left, right] = self.pad;
        let (ph, pw) = (h + top + bottom, w + left + right);
        if ph < k || pw < k {
            candle_core::bail!("depthwise-conv2d: kernel {k} larger than the padded input");
        }
        let s = self.stride;
        let (oh, ow) = ((ph - k) / s + 1, (pw - k) / s + 1);
        let (lo, hi) = if self.relu6 {
            (0f32, 6f32)
        } else {
            (f32::NEG_INFINITY, f32::INFINITY)
        };
        // For tap kx, the output columns whose input column lies inside the image.
        let cols: Vec<(usize, usize)> = (0..k)
            .map(|kx| {
                let lo = left.saturating_sub(kx).div_ceil(s);
                let hi = (w + left).saturating_sub(kx).div_ceil(s).min(ow);
                (lo, hi.max(lo))
            })
            .collect();
        let mut out = vec![0f32; n * oh * ow * c];
        // One task per output row of [ow, c] values: bias first, then each tap adds a
        // weighted input row to it, then the activation.
        out.par_chunks_mut(ow * c).enumerate().for_each(|(row, o)| {
            let (img, oy) = (row / oh, row % oh);
            let image = &x[img * h * w * c..(img + 1) * h * w * c];
            for acc in o.chunks_exact_mut(c) {
                acc.copy_from_slice(bias);
            }
            for ky in 0..k {
                let Some(iy) = (oy * s + ky).checked_sub(top).filter(|&y| y < h) else {
                    continue;
                };
                let irow = &image[iy * w * c..(iy + 1) * w * c];
                for (kx, &(lo, hi)) in cols.iter().enumerate() {
                    let t = &taps[(ky * k + kx) * c..(ky * k + kx + 1) * c];
                    // Input column of output column `lo`; inside the row by `cols`.
                    let first = lo * s + kx - left;
                    let dst = o[lo * c..hi * c].chunks_exact_mut(c);
                    let src = irow[first * c..].chunks(s * c);
                    for (acc, px) in dst.zip(src) {
                        for ((a, &v), &wt) in acc.iter_mut().zip(&px[..c]).zip(t) {
                            *a += v * wt;
                        }
                    }
                }
            }
            for a in o.iter_mut() {
                *a = a.clamp(lo, hi);
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((n, oh, ow, c))))
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

    /// candle's grouped conv on channels-first data, then bias and ReLU6: an independent path.
    fn plain(x: &Tensor, w: &Tensor, b: &Tensor, s: usize, pad: [usize; 4]) -> Result<Tensor> {
        let c = x.dim(3)?;
        let xc = x.permute((0, 3, 1, 2))?;
        let xc = xc.pad_with_zeros(2, pad[0], pad[1])?;
        let xc = xc.pad_with_zeros(3, pad[2], pad[3])?;
        let y = xc
            .conv2d(w, 0, s, 1, c)?
            .broadcast_add(&b.reshape((1, c, 1, 1))?)?;
        y.clamp(0f32, 6f32)?.permute((0, 2, 3, 1))
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
            let c = 19;
            let x = (Tensor::randn(0f32, 1.0, (2, h, w, c), &dev)? * 2.0)?;
            let wt = Tensor::randn(0f32, 1.0, (c, 1, k, k), &dev)?;
            let taps = wt.reshape((c, k * k))?.t()?.contiguous()?;
            let b = Tensor::randn(0f32, 1.0, c, &dev)?;
            let want = plain(&x, &wt, &b, stride, pad)?;
            let fast = conv(&x, &taps, &b, stride, pad, true)?;
            let slow = reference(&x, &taps, &b, stride, pad, true)?;
            assert_eq!(fast.dims(), want.dims(), "{h}x{w} k{k} s{stride}");
            assert!(
                max_diff(&fast, &want) < 1e-5,
                "{h}x{w} k{k} s{stride} {pad:?}"
            );
            assert!(
                max_diff(&slow, &want) < 1e-5,
                "reference {h}x{w} k{k} s{stride}"
            );
        }
        // f64 takes candle's path and gives the same shape.
        let x = Tensor::randn(0f64, 1.0, (1, 8, 8, 2), &dev)?;
        let taps = Tensor::randn(0f64, 1.0, (9, 2), &dev)?;
        let b = Tensor::zeros(2, DType::F64, &dev)?;
        let y = conv(&x, &taps, &b, 2, [0, 1, 0, 1], false)?;
        assert_eq!(y.dims(), &[1, 4, 4, 2]);
        Ok(())
    }
}
