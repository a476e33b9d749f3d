//! A typed conversation with the text LLM (`percept chat`). Each turn goes through the same
//! safe prompt builder as `ask`, after the turns so far; the engine keeps the cached prefix,
//! so a turn only feeds its new tokens.

use crate::error::Result;
use crate::prompt::question_prompt;
use percept_core::{AnswerEvent, Turn, TurnRole};
use percept_llm::{answer, Engine, GenParams, Generation};
use std::sync::atomic::AtomicBool;

pub struct Chat {
    pub engine: Engine,
    system: Option<String>,
    params: GenParams,
    history: Vec<Turn>,
}

impl Chat {
    pub fn new(engine: Engine, system: Option<String>, params: GenParams) -> Self {
        Chat {
            engine,
            system,
            params,
            history: Vec::new(),
        }
    }

    /// Forgets the turns so far, and the engine's cache of them.
    pub fn reset(&mut self) {
        self.history.clear();
        self.engine.reset();
    }

    /// Answers `line` after the turns so far; `on_delta` sees the answer as it is decoded.
    /// The exchange joins the history even when `cancel` stopped the answer part way, as the
    /// person saw it; a failed turn leaves the history as it was.
    pub fn say(
        &mut self,
        line: &str,
        cancel: &AtomicBool,
        on_delta: &mut dyn FnMut(&str),
    ) -> Result<Generation> {
        let history = self.history.clone();
        let prompt = question_prompt(self.system.clone(), history, Some(line), &[], &[]);
        let mut on_event = |ev: AnswerEvent| {
            if let AnswerEvent::Delta { text } = ev {
                on_delta(&text);
            }
        };
        let gen = answer(
            &mut self.engine,
            &prompt,
            &self.params,
            cancel,
            &mut on_event,
        )?;
        self.history.push(Turn {
            role: TurnRole::User,
            text: line.to_string(),
        });
        self.history.push(Turn {
            role: TurnRole::Assistant,
            text: gen.text.clone(),
        });
        Ok(gen)
    }
}
