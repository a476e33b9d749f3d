/// Why OCR cannot run, or failed on one image.
#[derive(Debug, thiserror::Error)]
pub enum OcrError {
    /// No `tesseract` program, or no English data for it.
    #[error(
        "OCR is off: tesseract is not installed (apt install tesseract-ocr tesseract-ocr-eng)"
    )]
    NotInstalled,
    #[error("image `{source_name}`: {message}")]
    Image {
        source_name: String,
        message: String,
    },
    #[error("tesseract failed on `{source_name}`: {message}")]
    Engine {
        source_name: String,
        message: String,
    },
    /// Tesseract was stopped at its deadline (some patterns keep its layout analysis busy
    /// for minutes).
    #[error("tesseract gave up on `{source_name}` after {secs} s")]
    TimedOut { source_name: String, secs: f32 },
}
