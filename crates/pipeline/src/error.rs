//! One error type for the pipeline; each stage's own error keeps its message.

use std::path::Path;

/// Stage errors are boxed: some are large, and every pipeline result would carry their size.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Store(Box<percept_models::StoreError>),
    #[error(transparent)]
    Whisper(Box<percept_whisper::WhisperError>),
    #[error(transparent)]
    Clip(Box<percept_clip::ClipError>),
    #[error(transparent)]
    Llm(Box<percept_llm::LlmError>),
    #[error(transparent)]
    Listen(Box<percept_listen::ListenError>),
    #[error(transparent)]
    Audio(Box<percept_media::AudioError>),
    #[error(transparent)]
    Image(Box<percept_media::image::ImageError>),
    /// A stage name and what went wrong there (`loading Whisper from DIR: ...`).
    #[error("{what}: {message}")]
    Stage { what: String, message: String },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// A pipeline definition that does not parse or names something wrong.
    #[error("pipeline `{name}`: {message}")]
    Definition { name: String, message: String },
    /// A device the build or the machine does not have.
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    Invalid(String),
    /// A job on the stage threads failed (it names its input).
    #[error(transparent)]
    Job(Box<crate::service::JobError>),
    /// The caller's output (a closed pipe) failed while a session reported to it.
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

macro_rules! boxed_from {
    ($($variant:ident: $ty:ty),* $(,)?) => {$(
        impl From<$ty> for PipelineError {
            fn from(e: $ty) -> Self {
                PipelineError::$variant(Box::new(e))
            }
        }
    )*};
}

boxed_from!(
    Store: percept_models::StoreError,
    Whisper: percept_whisper::WhisperError,
    Clip: percept_clip::ClipError,
    Llm: percept_llm::LlmError,
    Listen: percept_listen::ListenError,
    Audio: percept_media::AudioError,
    Image: percept_media::image::ImageError,
    Job: crate::service::JobError,
);

pub type Result<T, E = PipelineError> = std::result::Result<T, E>;

impl PipelineError {
    pub fn invalid(message: impl Into<String>) -> Self {
        PipelineError::Invalid(message.into())
    }

    pub fn stage(what: impl Into<String>, message: impl std::fmt::Display) -> Self {
        PipelineError::Stage {
            what: what.into(),
            message: message.to_string(),
        }
    }

    pub fn io(what: impl Into<String>, path: &Path, source: std::io::Error) -> Self {
        PipelineError::Io {
            what: format!("{} {}", what.into(), path.display()),
            source,
        }
    }
}
