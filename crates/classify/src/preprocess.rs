//! RGB8 image to the network's input: shorter side resized to `resize` with Pillow's
//! bicubic, a `crop` x `crop` center crop (offsets rounded down), `(x - mean) / std`.
//! scripts/fixtures/efficientnet_reference.py does the same steps with Pillow.

use crate::config::PreprocessConfig;
use percept_media::image_resize::{resize_bicubic_rgb_window, Window};

/// Size after the shorter-side resize; the longer side is truncated like torchvision's
/// `Resize(int)` and transformers' processors do.
pub fn resize_size(w: u32, h: u32, shorter: u32) -> (u32, u32) {
    let (short, long) = (w.min(h), w.max(h));
    let long = ((u64::from(shorter) * u64::from(long)) / u64::from(short.max(1))) as u32;
    if w <= h {
        (shorter, long.max(1))
    } else {
        (long.max(1), shorter)
    }
}

/// The `crop` x `crop` RGB8 pixels the model sees. Needs `cfg.resize >= cfg.crop`
/// (checked when the configuration loads) and a non-empty image.
pub fn resize_and_crop(rgb: &[u8], w: u32, h: u32, cfg: &PreprocessConfig) -> Vec<u8> {
    let (rw, rh) = resize_size(w, h, cfg.resize);
    let crop = cfg.crop as usize;
    let win = Window {
        x0: (rw as usize).saturating_sub(crop) / 2,
        y0: (rh as usize).saturating_sub(crop) / 2,
        w: crop.min(rw as usize),
        h: crop.min(rh as usize),
    };
    if (rw, rh) == (w, h) {
        // Pillow returns the image itself when the size is unchanged: a plain crop.
        let mut v = Vec::with_capacity(win.w * win.h * 3);
        for y in win.y0..win.y0 + win.h {
            let s = (y * w as usize + win.x0) * 3;
            v.extend_from_slice(&rgb[s..s + win.w * 3]);
        }
        return v;
    }
    let size = (rw as usize, rh as usize);
    resize_bicubic_rgb_window(rgb, (w as usize, h as usize), size, win)
}

/// Channel-first floats `[3, crop, crop]` from the cropped RGB8 pixels.
pub fn normalize(crop: &[u8], cfg: &PreprocessConfig) -> Vec<f32> {
    let plane = crop.len() / 3;
    let mut out = vec![0f32; plane * 3];
    for (i, px) in crop.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = (f32::from(px[c]) - cfg.mean) / cfg.std;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorter_side_becomes_the_resize_target() {
        assert_eq!(resize_size(451, 300, 256), (384, 256));
        assert_eq!(resize_size(427, 640, 256), (256, 383));
        assert_eq!(resize_size(512, 512, 256), (256, 256));
        assert_eq!(resize_size(4000, 1, 256), (1_024_000, 256));
    }

    #[test]
    fn crop_is_centred_and_normalised() {
        let cfg = PreprocessConfig::lite();
        let rgb = vec![255u8; 300 * 260 * 3];
        let crop = resize_and_crop(&rgb, 300, 260, &cfg);
        assert_eq!(crop.len(), 224 * 224 * 3);
        let x = normalize(&crop, &cfg);
        assert!(x.iter().all(|&v| v == 1.0));
        assert_eq!(normalize(&[127, 0, 255], &cfg), [0.0, -127.0 / 128.0, 1.0]);
    }
}
