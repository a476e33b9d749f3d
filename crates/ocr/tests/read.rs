//! The real `tesseract` on printed text (tests/fixtures/ocr/, made by
//! scripts/fixtures/ocr_pages.sh) and on the bundled photos, which hold no text.

use percept_media::image::{decode_image_file, ImageOptions};
use percept_ocr::{Ocr, OcrError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ocr() -> Ocr {
    Ocr::new().expect("these tests need tesseract: apt install tesseract-ocr tesseract-ocr-eng")
}

fn read(ocr: &Ocr, path: &Path) -> Option<percept_ocr::OcrText> {
    let img = decode_image_file(path, &ImageOptions::default()).unwrap();
    ocr.read(&img).unwrap()
}

/// Lowercase words without punctuation.
fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .collect::<String>()
                .to_lowercase()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

#[test]
fn printed_text_comes_back() {
    let ocr = ocr();
    let dir = root().join("tests/fixtures/ocr");
    let manifest = std::fs::read_to_string(dir.join("texts.tsv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines().skip(1) {
        let (file, expected) = line.split_once('\t').unwrap();
        let got = read(&ocr, &dir.join(file)).unwrap_or_else(|| panic!("{file}: no text"));
        let got_words = words(&got.text);
        let missing: Vec<String> = words(expected)
            .into_iter()
            .filter(|w| !got_words.contains(w))
            .collect();
        // One misread word is a Tesseract version's choice; more is a broken pipeline.
        assert!(
            missing.len() <= 1,
            "{file}: read {:?}, missing {missing:?}",
            got.text
        );
        assert!(got.confidence > 0.7, "{file}: {}", got.confidence);
        assert!(
            got.text.len() <= expected.len() + 10,
            "{file}: {:?}",
            got.text
        );
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn photos_without_text_give_none() {
    let ocr = ocr();
    let dir = root().join("assets/images");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "txt" || e == "md") {
            continue;
        }
        assert_eq!(read(&ocr, &path), None, "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 5, "{checked}");
}

#[test]
fn plain_colours_and_tiny_images_give_none() {
    let ocr = ocr();
    for (w, h, v) in [(1, 1, 0u8), (64, 48, 255), (300, 200, 90)] {
        let rgb = vec![v; w * h * 3];
        assert_eq!(
            ocr.read_rgb("plain", &rgb, w as u32, h as u32).unwrap(),
            None
        );
    }
}

/// A cross-hatch keeps Tesseract's layout analysis busy for many seconds (minutes at full
/// size), beyond any cancel point of its library: the process is killed at the deadline.
#[test]
fn a_cross_hatch_is_stopped_at_the_deadline() {
    let ocr = ocr().with_timeout(Duration::from_millis(800));
    let (w, h) = (1600usize, 1000usize);
    let mut rgb = vec![255u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            if (x + y) % 8 == 0 || (x + 8 * h - y) % 8 == 0 {
                rgb[(y * w + x) * 3..][..3].fill(0);
            }
        }
    }
    let t = Instant::now();
    let e = ocr.read_rgb("hatch", &rgb, w as u32, h as u32).unwrap_err();
    assert!(matches!(e, OcrError::TimedOut { .. }), "{e}");
    assert_eq!(e.to_string(), "tesseract gave up on `hatch` after 0.8 s");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

#[test]
fn without_tesseract_ocr_is_off_in_one_line() {
    let e = Ocr::with_program("/nonexistent/tesseract").unwrap_err();
    assert_eq!(
        e.to_string(),
        "OCR is off: tesseract is not installed (apt install tesseract-ocr tesseract-ocr-eng)"
    );
    // A program that runs but has no English data is the same: not installed.
    let e = Ocr::with_program("true").unwrap_err();
    assert!(matches!(e, OcrError::NotInstalled), "{e}");
}

#[test]
fn a_buffer_that_does_not_match_its_size_is_an_error() {
    let e = ocr().read_rgb("bad", &[0; 10], 2, 2).unwrap_err();
    assert!(matches!(e, OcrError::Image { .. }), "{e}");
}
