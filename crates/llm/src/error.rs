use std::path::PathBuf;

/// Everything that can go wrong in the LLM stage. Messages name the file or field at fault.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable GGUF file: {message}")]
    Gguf { path: PathBuf, message: String },
    #[error("GGUF metadata field `{field}`: {message}")]
    Metadata { field: String, message: String },
    #[error("model architecture `{0}` is not supported (supported: llama, qwen2, qwen3, gemma3)")]
    UnsupportedArch(String),
    #[error("tensor `{tensor}` uses quantisation {dtype}, which this build cannot run")]
    UnsupportedQuant { tensor: String, dtype: String },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    Template(String),
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    #[error("prompt of {prompt} tokens does not fit the context of {context} tokens")]
    ContextOverflow { prompt: usize, context: usize },
    #[error("no .gguf file in {0}")]
    NoGguf(PathBuf),
    #[error("more than one .gguf file in {0}; pass the file itself")]
    ManyGguf(PathBuf),
    #[error("model store: {0}")]
    Store(String),
    #[error("invalid sampling parameter: {0}")]
    Sampling(String),
}

pub type Result<T> = std::result::Result<T, LlmError>;
