//! What a job on the stage threads can fail with. Each media failure keeps the index and
//! name of its input, so a front end can point at the field (the server) or the file (the CLI).

/// One failed job.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The stage this job needs was not loaded (no weights given for it).
    #[error("{0}")]
    NotLoaded(String),
    #[error("{name}: cannot use this audio: {message}")]
    Audio {
        index: usize,
        name: String,
        message: String,
    },
    #[error("{name}: transcription failed: {error}")]
    Speech {
        index: usize,
        name: String,
        error: Box<percept_whisper::WhisperError>,
    },
    #[error("{name}: cannot use this image: {error}")]
    Image {
        index: usize,
        name: String,
        error: Box<percept_media::image::ImageError>,
    },
    /// CLIP or the classifier failed on a decoded image.
    #[error("{name}: {message}")]
    Vision {
        index: usize,
        name: String,
        message: String,
    },
    #[error(transparent)]
    Llm(Box<percept_llm::LlmError>),
    /// The caller cancelled the job before its stage took it.
    #[error("cancelled before it started")]
    Cancelled,
    /// The stage thread is gone, or dropped this job while failing on it (a panic: see the log).
    #[error("the {0} stage failed on this request")]
    Stopped(&'static str),
}

impl From<percept_llm::LlmError> for JobError {
    fn from(e: percept_llm::LlmError) -> Self {
        JobError::Llm(Box::new(e))
    }
}
