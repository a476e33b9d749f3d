use serde::Serialize;

/// Failure of one stage on one item. Stages convert their own typed errors into this
/// so the runner can forward it as a per-item result.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct StageError(pub String);

impl StageError {
    pub fn new(message: impl std::fmt::Display) -> Self {
        StageError(message.to_string())
    }

    /// Keeps the whole `source()` chain, since the outer message alone often hides the cause.
    pub fn from_error(err: &(dyn std::error::Error + 'static)) -> Self {
        let mut msg = err.to_string();
        let mut src = err.source();
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        StageError(msg)
    }
}

impl From<String> for StageError {
    fn from(s: String) -> Self {
        StageError(s)
    }
}

impl From<&str> for StageError {
    fn from(s: &str) -> Self {
        StageError(s.to_string())
    }
}

/// The error record an item carries out of the pipeline: which stage failed and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{stage}: {message}")]
pub struct ItemError {
    pub stage: String,
    pub message: String,
}
