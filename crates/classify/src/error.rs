use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// One line that tells the user how to get the weights.
    #[error("classifier weights not found ({path}); run `percept models fetch efficientnet-lite0` or pass the .pth file or its directory")]
    MissingWeights { path: String },
    #[error("{path}: {source}")]
    Checkpoint {
        path: String,
        source: Box<crate::pth::PthError>,
    },
    #[error("{path}: invalid configuration: {message}")]
    Config { path: String, message: String },
    /// The checkpoint does not hold the network the configuration describes.
    #[error("weights do not fit the network: {0}")]
    Weights(String),
    #[error("image `{source_name}`: {message}")]
    Image {
        source_name: String,
        message: String,
    },
    #[error("{context}: {source}")]
    Model {
        context: String,
        source: candle_core::Error,
    },
}

impl ClassifyError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        ClassifyError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn model(context: impl Into<String>) -> impl FnOnce(candle_core::Error) -> Self {
        let context = context.into();
        move |source| ClassifyError::Model { context, source }
    }
}
