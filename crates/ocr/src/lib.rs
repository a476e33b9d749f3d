//! percept-ocr: the text in an image, or nothing.
//!
//! - [`Ocr`]: the system's Tesseract (English), checked once to be installed; without it,
//!   [`Ocr::new`] says "OCR is off" and how to install it, in one line.
//! - [`Ocr::read`]: a decoded image in, its text out, or `None` when the image holds no text
//!   worth reading, so a photo without words adds nothing to a prompt.
//! - `page`: grey, at most [`MAX_SIDE`] on a side, a white margin.
//! - `process`: each image is one `tesseract` process with a deadline ([`TIMEOUT`]). The C
//!   library cannot be stopped inside its layout analysis, which some patterns keep busy for
//!   minutes; a process can be killed.
//! - `words`: the rule that decides: Tesseract's word table, lines it is sure of, a few real
//!   letters or digits at least, whitespace normalised, at most [`MAX_CHARS`] characters.

mod engine;
mod error;
mod page;
mod process;
mod words;

pub use engine::{Ocr, PROGRAM, TIMEOUT};
pub use error::OcrError;
pub use page::MAX_SIDE;
pub use words::{MAX_CHARS, MIN_CHARS, MIN_LINE_CONFIDENCE, MIN_WORD_CONFIDENCE};

use percept_core::DecodedImage;

/// What OCR read in one image.
#[derive(Debug, Clone, PartialEq)]
pub struct OcrText {
    /// The words in reading order, joined by single spaces.
    pub text: String,
    /// Mean confidence of the kept words, 0–1.
    pub confidence: f32,
    /// How many words were kept.
    pub words: usize,
}

impl Ocr {
    /// The text in `image`, or `None` when it holds none worth reading.
    pub fn read(&self, image: &DecodedImage) -> Result<Option<OcrText>, OcrError> {
        self.read_rgb(&image.source, &image.rgb, image.width, image.height)
    }

    /// [`Ocr::read`] for a row-major RGB8 buffer; `source` names it in errors.
    pub fn read_rgb(
        &self,
        source: &str,
        rgb: &[u8],
        width: u32,
        height: u32,
    ) -> Result<Option<OcrText>, OcrError> {
        let page = page::prepare(source, rgb, width, height)?;
        let tsv = self.tsv(source, &page)?;
        Ok(words::select(&words::parse_tsv(&tsv)))
    }
}
