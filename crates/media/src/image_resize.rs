//! Pillow's `Image.resize(..., BICUBIC)` for RGB8, reproduced bit for bit.
//!
//! CLIP was trained on Pillow-resized images and transformers' `CLIPImageProcessor` still
//! resizes with Pillow, as does the ImageNet classifier's reference; matching its rounding
//! makes a model's preprocessed pixels identical to the reference's, which matters more than
//! speed here. One copy serves every vision model.
//! Pillow's algorithm (libImaging/Resample.c): a separable convolution with the cubic
//! kernel (a = -0.5) whose support widens by the downscale factor (antialiasing);
//! weights are normalised, turned into 22-bit fixed point, and each pass (horizontal
//! first, then vertical) rounds and clamps to 8 bits.

const PRECISION_BITS: u32 = 32 - 8 - 2;

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each output position: first input index and fixed-point weights.
struct Coeffs {
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
}

/// Coefficients for output positions `start..start + count` of an `out_size` resize;
/// each position's weights depend only on its own index, so a window is exact.
fn precompute(in_size: usize, out_size: usize, start: usize, count: usize) -> Coeffs {
    const SUPPORT: f64 = 2.0;
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = SUPPORT * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(count);
    let mut weights = vec![0i32; count * ksize];
    let mut k = vec![0f64; ksize];
    for (i, xx) in (start..start + count).enumerate() {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // Pillow truncates with a C cast after adding 0.5.
        let xmin = ((center - support + 0.5) as i64).max(0) as usize;
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
        let n = xmax.saturating_sub(xmin).min(ksize);
        let mut ww = 0.0;
        for (x, kx) in k.iter_mut().enumerate().take(n) {
            let w = bicubic((x as f64 + xmin as f64 - center + 0.5) * ss);
            *kx = w;
            ww += w;
        }
        let row = &mut weights[i * ksize..(i + 1) * ksize];
        for (x, kx) in k.iter().enumerate().take(n) {
            let w = if ww != 0.0 { kx / ww } else { *kx };
            let f = w * f64::from(1u32 << PRECISION_BITS);
            row[x] = if w < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        bounds.push((xmin, n));
    }
    Coeffs {
        bounds,
        ksize,
        weights,
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// A rectangle of output pixels: columns `x0..x0 + w`, rows `y0..y0 + h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub x0: usize,
    pub y0: usize,
    pub w: usize,
    pub h: usize,
}

/// Resizes row-major RGB8 `src` (`w` x `h`) to `out_w` x `out_h` and returns only the
/// pixels inside `win` (row-major, `win.w` x `win.h`). Identical to resizing the whole
/// image and cropping, without the cost: a 4000x1 image resized to shortest edge 224
/// would otherwise need a 896000x224 buffer.
pub fn resize_bicubic_rgb_window(
    src: &[u8],
    (w, h): (usize, usize),
    (out_w, out_h): (usize, usize),
    win: Window,
) -> Vec<u8> {
    let cy = precompute(h, out_h, win.y0, win.h);
    // Only the input rows that the vertical pass reads go through the horizontal pass.
    let row_lo = cy.bounds.iter().map(|b| b.0).min().unwrap_or(0);
    let row_hi = cy.bounds.iter().map(|b| b.0 + b.1).max().unwrap_or(0);
    let rows = row_hi - row_lo;
    let stride = win.w * 3;
    let mut horizontal = vec![0u8; stride * rows];
    let cx = precompute(w, out_w, win.x0, win.w);
    for r in 0..rows {
        let row = &src[(row_lo + r) * w * 3..(row_lo + r + 1) * w * 3];
        let dst = &mut horizontal[r * stride..(r + 1) * stride];
        for (xx, &(xmin, n)) in cx.bounds.iter().enumerate() {
            let k = &cx.weights[xx * cx.ksize..xx * cx.ksize + n];
            let mut ss = [1i32 << (PRECISION_BITS - 1); 3];
            for (x, &kx) in k.iter().enumerate() {
                let p = &row[(xmin + x) * 3..(xmin + x) * 3 + 3];
                for ch in 0..3 {
                    ss[ch] += i32::from(p[ch]) * kx;
                }
            }
            for ch in 0..3 {
                dst[xx * 3 + ch] = clip8(ss[ch]);
            }
        }
    }
    let mut out = vec![0u8; stride * win.h];
    for (yy, &(ymin, n)) in cy.bounds.iter().enumerate() {
        let k = &cy.weights[yy * cy.ksize..yy * cy.ksize + n];
        let dst = &mut out[yy * stride..(yy + 1) * stride];
        for (i, d) in dst.iter_mut().enumerate() {
            let mut ss = 1i32 << (PRECISION_BITS - 1);
            for (y, &ky) in k.iter().enumerate() {
                ss += i32::from(horizontal[(ymin - row_lo + y) * stride + i]) * ky;
            }
            *d = clip8(ss);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(451, 336), (300, 224), (224, 224), (10, 37)] {
            let c = precompute(i, o, 0, o);
            for (xx, &(_, n)) in c.bounds.iter().enumerate() {
                let s: i32 = c.weights[xx * c.ksize..xx * c.ksize + n].iter().sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= n as i32,
                    "{i}->{o} at {xx}"
                );
            }
        }
    }

    #[test]
    fn flat_image_stays_flat() {
        let src = vec![77u8; 40 * 30 * 3];
        let win = Window {
            x0: 0,
            y0: 0,
            w: 13,
            h: 17,
        };
        let out = resize_bicubic_rgb_window(&src, (40, 30), (13, 17), win);
        assert!(out.iter().all(|&v| v == 77));
    }

    #[test]
    fn window_equals_crop_of_full_resize() {
        let src: Vec<u8> = (0..37 * 23 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let full = Window {
            x0: 0,
            y0: 0,
            w: 50,
            h: 31,
        };
        let all = resize_bicubic_rgb_window(&src, (37, 23), (50, 31), full);
        let win = Window {
            x0: 9,
            y0: 4,
            w: 20,
            h: 11,
        };
        let part = resize_bicubic_rgb_window(&src, (37, 23), (50, 31), win);
        for y in 0..11 {
            let a = &all[((y + 4) * 50 + 9) * 3..((y + 4) * 50 + 29) * 3];
            assert_eq!(a, &part[y * 60..(y + 1) * 60]);
        }
    }
}
