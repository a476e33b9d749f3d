use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: invalid configuration: {message}")]
    Config { path: String, message: String },
    /// One line that tells the user how to get the weights.
    #[error("CLIP weights not found ({dir}); run `percept models fetch clip-vit-base-patch32` or pass --clip-dir DIR")]
    MissingWeights { dir: String },
    #[error("{context}: {source}")]
    Model {
        context: String,
        source: candle_core::Error,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("{path}: cache unusable: {message}")]
    Cache { path: String, message: String },
    #[error(transparent)]
    Image(#[from] percept_media::image::ImageError),
}

impl ClipError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ClipError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn model(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| ClipError::Model { context, source }
    }
}
