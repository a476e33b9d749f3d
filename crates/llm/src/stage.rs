//! The LLM as a pipeline stage: a request (prompt, settings, where to stream) in, the
//! finished answer out.

use crate::engine::{Engine, GenParams, Generation};
use crate::error::Result;
use crate::prompt::build_prompt;
use crossbeam_channel::Sender;
use percept_core::{AnswerEvent, Prompt, Stage, StageError};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// One question for the LLM stage.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub prompt: Prompt,
    pub params: GenParams,
    /// Where text deltas and the final `Done` go as they are produced (dropped receivers are
    /// fine: generation carries on).
    pub events: Option<Sender<AnswerEvent>>,
    /// Set to stop this answer early.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl LlmRequest {
    pub fn new(prompt: Prompt) -> Self {
        LlmRequest {
            prompt,
            params: GenParams::default(),
            events: None,
            cancel: None,
        }
    }
}

/// Builds the safe prompt and streams the answer: the function `ask`, `chat` and the stage share.
pub fn answer(
    engine: &mut Engine,
    prompt: &Prompt,
    params: &GenParams,
    cancel: &AtomicBool,
    on_event: &mut dyn FnMut(AnswerEvent),
) -> Result<Generation> {
    // Leave room for at least a short answer.
    let room = params.max_tokens.clamp(1, engine.context_length() / 2);
    let budget = engine.context_length().saturating_sub(room);
    let built = build_prompt(&engine.tokenizer, &engine.template, prompt, budget)?;
    let untrusted = built
        .untrusted_spans
        .iter()
        .flat_map(|r| &built.ids[r.clone()]);
    let (mut count, mut control) = (0, 0);
    for &id in untrusted {
        count += 1;
        control += usize::from(engine.tokenizer.is_special(id));
    }
    let mut gen = engine.generate(&built.ids, params, cancel, on_event)?;
    gen.untrusted_tokens = count;
    gen.control_tokens_in_untrusted = control;
    Ok(gen)
}

pub struct LlmStage {
    engine: Engine,
}

impl LlmStage {
    pub fn new(engine: Engine) -> Self {
        LlmStage { engine }
    }
}

impl Stage for LlmStage {
    type Input = LlmRequest;
    type Output = Generation;

    fn name(&self) -> &str {
        "llm"
    }

    fn process(&mut self, req: LlmRequest) -> std::result::Result<Generation, StageError> {
        let never = AtomicBool::new(false);
        let cancel = req.cancel.as_deref().unwrap_or(&never);
        let events = req.events;
        let mut send = |ev: AnswerEvent| {
            if let Some(tx) = &events {
                let _ = tx.send(ev);
            }
        };
        answer(
            &mut self.engine,
            &req.prompt,
            &req.params,
            cancel,
            &mut send,
        )
        .map_err(|e| StageError::from_error(&e))
    }
}
