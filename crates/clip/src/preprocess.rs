//! transformers' `CLIPImageProcessor` (the Pillow-based one) for RGB8 input:
//! shortest-edge resize (Pillow bicubic), center crop, rescale, normalise.
//! RGBA and gray inputs are already RGB: percept-media converts them the way Pillow's
//! `convert("RGB")` does (alpha dropped, gray replicated).

use crate::config::PreprocessConfig;
use percept_media::image_resize::{resize_bicubic_rgb_window, Window};

/// Output size of the shortest-edge resize, with transformers' float-then-truncate rule.
pub fn resize_size(w: u32, h: u32, shortest_edge: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_short = shortest_edge;
    let new_long = (f64::from(shortest_edge) * f64::from(long) / f64::from(short)) as u32;
    if w <= h {
        (new_short, new_long.max(1))
    } else {
        (new_long.max(1), new_short)
    }
}

/// Resize and center crop: the RGB8 image the model sees, `crop_w` x `crop_h`.
/// transformers crops at offset `floor((resized - crop) / 2)` and pads with zeros where
/// the crop is larger than the resized image; only the cropped window is resampled.
pub fn resize_and_crop(rgb: &[u8], w: u32, h: u32, cfg: &PreprocessConfig) -> Vec<u8> {
    let (rw, rh) = resize_size(w, h, cfg.shortest_edge);
    let (cw, ch) = (cfg.crop_width as i64, cfg.crop_height as i64);
    let top = (i64::from(rh) - ch).div_euclid(2);
    let left = (i64::from(rw) - cw).div_euclid(2);
    // The part of the crop that lies inside the resized image.
    let (x0, x1) = (left.max(0), (left + cw).min(i64::from(rw)));
    let (y0, y1) = (top.max(0), (top + ch).min(i64::from(rh)));
    let win = Window {
        x0: x0 as usize,
        y0: y0 as usize,
        w: (x1 - x0) as usize,
        h: (y1 - y0) as usize,
    };
    let inside = if (rw, rh) == (w, h) {
        // Pillow returns a copy when the size is unchanged: a plain crop.
        let mut v = Vec::with_capacity(win.w * win.h * 3);
        for y in win.y0..win.y0 + win.h {
            let s = (y * w as usize + win.x0) * 3;
            v.extend_from_slice(&rgb[s..s + win.w * 3]);
        }
        v
    } else {
        let size = (rw as usize, rh as usize);
        resize_bicubic_rgb_window(rgb, (w as usize, h as usize), size, win)
    };
    let mut out = vec![0u8; (cw * ch * 3) as usize];
    let (dx, dy) = ((x0 - left) as usize, (y0 - top) as usize);
    for y in 0..win.h {
        let d = ((dy + y) * cw as usize + dx) * 3;
        out[d..d + win.w * 3].copy_from_slice(&inside[y * win.w * 3..(y + 1) * win.w * 3]);
    }
    out
}

/// Channel-first float pixels, computed in the same precision steps as transformers:
/// rescale in f64 then cast to f32, then `(x - mean) / std` in f32.
pub fn normalize(crop: &[u8], cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = (cfg.crop_width * cfg.crop_height) as usize;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in crop.chunks_exact(3).enumerate().take(plane) {
        for c in 0..3 {
            let x = (f64::from(px[c]) * cfg.rescale_factor) as f32;
            out[c * plane + i] = (x - cfg.mean[c]) / cfg.std[c];
        }
    }
    out
}

/// The full processor: RGB8 in, `[3, crop_h, crop_w]` floats out.
pub fn pixel_values(rgb: &[u8], w: u32, h: u32, cfg: &PreprocessConfig) -> Vec<f32> {
    normalize(&resize_and_crop(rgb, w, h, cfg), cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_edge_rule_matches_transformers() {
        assert_eq!(resize_size(451, 300, 224), (336, 224));
        assert_eq!(resize_size(640, 427, 224), (335, 224));
        assert_eq!(resize_size(300, 451, 224), (224, 336));
        assert_eq!(resize_size(4000, 1, 224), (896_000, 224));
    }

    #[test]
    fn crop_pads_with_zeros_when_image_is_small() {
        let cfg = PreprocessConfig {
            shortest_edge: 2,
            crop_height: 4,
            crop_width: 4,
            ..PreprocessConfig::default()
        };
        let out = resize_and_crop(&[9u8; 2 * 2 * 3], 2, 2, &cfg);
        // offset floor((2-4)/2) = -1: rows/cols 1..3 hold the image.
        assert_eq!(out[0], 0);
        assert_eq!(out[(4 + 1) * 3], 9);
        assert_eq!(out[(2 * 4 + 2) * 3], 9);
        assert_eq!(out[(3 * 4 + 3) * 3], 0);
    }

    #[test]
    fn very_wide_image_only_resamples_the_crop() {
        let rgb: Vec<u8> = (0..4000 * 3).map(|i| (i % 256) as u8).collect();
        let out = resize_and_crop(&rgb, 4000, 1, &PreprocessConfig::default());
        assert_eq!(out.len(), 224 * 224 * 3);
    }
}
