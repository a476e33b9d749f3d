//! The chat request parsing, reachable from the fuzz targets in `fuzz/`; not an API.

use crate::chat_input::{self, ChatRequest, MediaPolicy};
use percept_core::Turn;
use std::path::PathBuf;

/// A chat request body after parsing, before the stages: the prompt's text parts and how
/// many media parts were accepted.
#[derive(Debug)]
pub struct ChatText {
    pub system: Option<String>,
    pub history: Vec<Turn>,
    pub question: Option<String>,
    pub images: usize,
    pub audio: usize,
}

/// Parses a `/v1/chat/completions` body as the handler does: the JSON, the sampling
/// fields, then the messages split into system, history, question and media (`allow_dir`
/// plays `--allow-dir`). An error is the message the client would get.
pub fn chat_request(
    body: &[u8],
    allow_dir: Option<PathBuf>,
    max_bytes: usize,
) -> Result<ChatText, String> {
    let req: ChatRequest = crate::json::parse(body).map_err(|e| e.message)?;
    crate::chat::gen_params(&req, &percept_llm::GenParams::default()).map_err(|e| e.message)?;
    let policy = MediaPolicy {
        allow_dirs: allow_dir.into_iter().collect(),
        max_bytes,
    };
    let inputs = chat_input::split(req.messages, &policy).map_err(|e| e.message)?;
    Ok(ChatText {
        system: inputs.system,
        history: inputs.history,
        question: inputs.question,
        images: inputs.images.len(),
        audio: inputs.audio.len(),
    })
}
