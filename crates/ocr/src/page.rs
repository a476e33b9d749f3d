//! The picture Tesseract reads: grey, at most [`MAX_SIDE`] pixels on its longer side (which
//! bounds the time one image takes), with a white margin, since Tesseract's layout analysis
//! misses a line of text that runs along an edge (a caption under a photo).

use crate::error::OcrError;

/// The longest side read; larger images are shrunk by a whole factor (box average), which
/// keeps a phone photo of a page readable and a huge image from taking minutes.
pub const MAX_SIDE: u32 = 2560;

/// White border added on every side, in pixels.
const MARGIN: u32 = 16;

/// One grey byte per pixel, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Page {
    pub gray: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

impl Page {
    /// The page as a binary PGM (P5), the simplest format Tesseract reads from stdin.
    pub fn pgm(&self) -> Vec<u8> {
        let mut out = format!("P5\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.gray);
        out
    }
}

/// `rgb` (row-major RGB8, `width * height * 3` bytes) as a [`Page`].
pub(crate) fn prepare(source: &str, rgb: &[u8], width: u32, height: u32) -> Result<Page, OcrError> {
    let bad = |message: String| OcrError::Image {
        source_name: source.to_string(),
        message,
    };
    let (w, h) = (width as usize, height as usize);
    let expected = w
        .checked_mul(h)
        .and_then(|n| n.checked_mul(3))
        .ok_or_else(|| bad(format!("{width}x{height} is too large")))?;
    if expected != rgb.len() || w == 0 || h == 0 {
        return Err(bad(format!(
            "{width}x{height} RGB needs {expected} bytes, got {}",
            rgb.len()
        )));
    }
    let factor = width.max(height).div_ceil(MAX_SIDE) as usize;
    let (sw, sh) = ((w / factor).max(1), (h / factor).max(1));
    let m = MARGIN as usize;
    let (pw, ph) = (sw + 2 * m, sh + 2 * m);
    let mut gray = vec![255u8; pw * ph];
    for y in 0..sh {
        for x in 0..sw {
            let mut sum = 0u32;
            let mut n = 0u32;
            for yy in y * factor..((y + 1) * factor).min(h) {
                for xx in x * factor..((x + 1) * factor).min(w) {
                    let p = &rgb[(yy * w + xx) * 3..][..3];
                    sum += luma(p[0], p[1], p[2]);
                    n += 1;
                }
            }
            gray[(y + m) * pw + x + m] = (sum / n.max(1)) as u8;
        }
    }
    Ok(Page {
        gray,
        width: pw as u32,
        height: ph as u32,
    })
}

/// ITU-R 601 luma, as Leptonica's own RGB-to-grey conversion.
fn luma(r: u8, g: u8, b: u8) -> u32 {
    (299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_with_a_white_margin() {
        let rgb = [0, 0, 0, 255, 0, 0]; // black, red
        let p = prepare("t", &rgb, 2, 1).unwrap();
        assert_eq!((p.width, p.height), (2 + 2 * MARGIN, 1 + 2 * MARGIN));
        let row = &p.gray[MARGIN as usize * p.width as usize..][..p.width as usize];
        assert_eq!(&row[MARGIN as usize..][..2], &[0, 76]);
        assert!(row[..MARGIN as usize].iter().all(|&v| v == 255));
        assert!(p.gray[..p.width as usize].iter().all(|&v| v == 255));
    }

    #[test]
    fn pgm_has_a_header_then_the_pixels() {
        let p = Page {
            gray: vec![1, 2, 3, 4, 5, 6],
            width: 3,
            height: 2,
        };
        assert_eq!(p.pgm(), b"P5\n3 2\n255\n\x01\x02\x03\x04\x05\x06");
    }

    #[test]
    fn large_images_shrink_by_a_whole_factor() {
        let (w, h) = (MAX_SIDE * 2 + 1, 4);
        let rgb = vec![100u8; (w * h * 3) as usize];
        let p = prepare("t", &rgb, w, h).unwrap();
        assert_eq!(p.width, w / 3 + 2 * MARGIN);
        assert_eq!(p.height, 1 + 2 * MARGIN);
        assert_eq!(p.gray[(MARGIN * p.width + MARGIN) as usize], 100);
    }

    #[test]
    fn a_buffer_of_the_wrong_size_is_an_error() {
        let e = prepare("x.png", &[0; 5], 1, 2).unwrap_err();
        assert!(e.to_string().contains("x.png"), "{e}");
        assert!(prepare("x", &[], 0, 0).is_err());
    }
}
