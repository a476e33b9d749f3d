//! percept-llm: the text LLM stage.
//!
//! - [`Engine`]: a GGUF model (llama, qwen2, qwen3, gemma3) with the tokenizer and chat
//!   template read from the same file; streamed, UTF-8-safe answers; multi-turn cache reuse.
//! - [`build_prompt`]: the one way the pipeline turns a [`percept_core::Prompt`] into tokens;
//!   untrusted text never becomes control tokens and context is fenced as data.
//! - [`LlmStage`]: the engine as a [`percept_core::Stage`].

mod engine;
mod error;
mod gguf;
mod model;
mod native;
mod prompt;
mod sampling;
mod spm;
mod stage;
mod stream;
mod template;
mod tokenizer;

pub use engine::{Engine, GenParams, Generation};
pub use error::{LlmError, Result};
pub use gguf::{resolve_model, GgufFile, Meta};
pub use model::{LoadOptions, Model};
pub use prompt::{build_prompt, BuiltPrompt, DATA_INSTRUCTION};
pub use sampling::{argmax, Sampler, SamplingParams};
pub use stage::{answer, LlmRequest, LlmStage};
pub use stream::DeltaStream;
pub use template::{ChatTemplate, Message};
pub use tokenizer::TextTokenizer;

/// The model `ask` and `chat` use when none is named.
pub const DEFAULT_MODEL: &str = "smollm2-135m-instruct";
