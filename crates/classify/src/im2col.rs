//! Patches of an NCHW image as the rows of a matrix, so that a full convolution (the
//! stem) becomes one matmul whose output is already channels-last.
//!
//! candle's conv2d does the same internally but returns NCHW, which the channels-last
//! network then has to transpose; and it needs the padding as a separate copy. Off the
//! CPU the model keeps candle's conv2d.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// `x` [n, c, h, w] -> [n * oh * ow, k * k * c], columns ordered (ky, kx, c); zeros where
/// a tap falls in the padding `pad` = [top, bottom, left, right].
pub fn patches(x: &Tensor, k: usize, stride: usize, pad: [usize; 4]) -> Result<Tensor> {
    x.contiguous()?.apply_op1_no_bwd(&Im2Col { k, stride, pad })
}

struct Im2Col {
    k: usize,
    stride: usize,
    pad: [usize; 4],
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col-nhwc"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (CpuStorage::F32(data), Some((a, b))) = (s, l.contiguous_offsets()) else {
            candle_core::bail!("im2col: contiguous f32 input only");
        };
        let x = &data[a..b];
        let (n, c, h, w) = l.shape().dims4()?;
        let (k, st) = (self.k, self.stride);
        let [top, bottom, left, right] = self.pad;
        let (ph, pw) = (h + top + bottom, w + left + right);
        if k == 0 || st == 0 || ph < k || pw < k {
            candle_core::bail!("im2col: kernel {k} stride {st} on {h}x{w}");
        }
        let (oh, ow) = ((ph - k) / st + 1, (pw - k) / st + 1);
        let cols = k * k * c;
        let mut out = vec![0f32; n * oh * ow * cols];
        out.par_chunks_mut(ow * cols)
            .enumerate()
            .for_each(|(row, o)| {
                let (img, oy) = (row / oh, row % oh);
                let image = &x[img * c * h * w..(img + 1) * c * h * w];
                for (ox, patch) in o.chunks_exact_mut(cols).enumerate() {
                    for ky in 0..k {
                        let Some(iy) = (oy * st + ky).checked_sub(top).filter(|&y| y < h) else {
                            continue;
                        };
                        for kx in 0..k {
                            let Some(ix) = (ox * st + kx).checked_sub(left).filter(|&v| v < w)
                            else {
                                continue;
                            };
                            let dst = &mut patch[(ky * k + kx) * c..(ky * k + kx + 1) * c];
                            for (ci, d) in dst.iter_mut().enumerate() {
                                *d = image[(ci * h + iy) * w + ix];
                            }
                        }
                    }
                }
            });
        Ok((CpuStorage::F32(out), Shape::from((n * oh * ow, cols))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, D};

    #[test]
    fn patches_times_weights_equal_candles_conv() -> Result<()> {
        let dev = Device::Cpu;
        for (h, w, k, s, pad) in [(225, 224, 3, 2, [0, 1, 0, 1]), (9, 7, 3, 1, [1, 1, 1, 1])] {
            let x = Tensor::randn(0f32, 1.0, (2, 3, h, w), &dev)?;
            let wt = Tensor::randn(0f32, 1.0, (5, 3, k, k), &dev)?;
            let xp = x.pad_with_zeros(D::Minus2, pad[0], pad[1])?;
            let xp = xp.pad_with_zeros(D::Minus1, pad[2], pad[3])?;
            let want = xp.conv2d(&wt, 0, s, 1, 1)?.permute((0, 2, 3, 1))?;
            let cols = wt.permute((2, 3, 1, 0))?.reshape((k * k * 3, 5))?;
            let got = patches(&x, k, s, pad)?
                .matmul(&cols)?
                .reshape(want.dims())?;
            let diff = (got - want)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            assert!(diff < 1e-4, "{h}x{w} k{k} s{s}: {diff}");
        }
        Ok(())
    }
}
