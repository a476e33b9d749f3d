//! A loaded model with its tokenizer and chat template, generating streamed answers.
//!
//! Multi-turn cache policy: the engine remembers which token ids its key/value cache holds.
//! When a new prompt starts with exactly those ids, only the new tail is fed. Otherwise
//! (edited history, a re-tokenised answer, turns dropped for space) the cache is cleared and
//! the whole prompt is fed again: candle's caches can grow but not be cut back.

use crate::error::{LlmError, Result};
use crate::gguf::{resolve_model, GgufFile};
use crate::model::{LoadOptions, Model};
use crate::sampling::{Sampler, SamplingParams};
use crate::stream::DeltaStream;
use crate::template::ChatTemplate;
use crate::tokenizer::TextTokenizer;
use percept_core::{AnswerEvent, FinishReason};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenParams {
    pub sampling: SamplingParams,
    pub max_tokens: usize,
    /// Text that ends the answer (not included in it).
    pub stop: Vec<String>,
    /// No run of this many tokens appears twice in the answer (0 = off): the token that
    /// would complete a repeat is never chosen, as Hugging Face's `no_repeat_ngram_size`.
    pub no_repeat_ngram: usize,
}

impl Default for GenParams {
    fn default() -> Self {
        GenParams {
            sampling: SamplingParams::default(),
            max_tokens: 512,
            stop: Vec::new(),
            no_repeat_ngram: 0,
        }
    }
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Generation {
    pub text: String,
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    /// Prompt tokens whose cache entries were reused from the previous turn.
    pub reused_tokens: usize,
    /// Prompt tokens that came from untrusted text (set by [`crate::answer`]).
    pub untrusted_tokens: usize,
    /// Control-token ids found inside those spans: always 0 unless the prompt builder is
    /// broken; reported so that end-to-end tests can audit real runs.
    pub control_tokens_in_untrusted: usize,
    #[serde(skip)]
    pub prefill_time: Duration,
    #[serde(skip)]
    pub decode_time: Duration,
}

pub struct Engine {
    pub model: Model,
    pub tokenizer: TextTokenizer,
    pub template: ChatTemplate,
    pub path: PathBuf,
    /// Token ids the model's cache currently holds, in order.
    cached: Vec<u32>,
}

impl Engine {
    /// `spec` is a model id, a directory or a `.gguf` file.
    pub fn load(spec: &str, opts: &LoadOptions) -> Result<Self> {
        let path = resolve_model(spec)?;
        Self::load_file(&path, opts)
    }

    pub fn load_file(path: &Path, opts: &LoadOptions) -> Result<Self> {
        let mut gg = GgufFile::open(path)?;
        let meta = gg.meta();
        let tokenizer = TextTokenizer::from_gguf(&meta, path.parent())?;
        let bos = tokenizer.bos.as_ref().map(|b| b.1.as_str()).unwrap_or("");
        let eos = tokenizer.eos.as_ref().map(|b| b.1.as_str()).unwrap_or("");
        let template = ChatTemplate::new(meta.opt_string("tokenizer.chat_template"), bos, eos);
        // The vocabulary's arrays (tens of thousands of strings) are the tokenizer's now; freed
        // before the weights load, their memory is reused rather than added to the peak.
        gg.content
            .metadata
            .retain(|k, _| !k.starts_with("tokenizer.ggml."));
        let model = Model::load(gg, opts)?;
        Ok(Engine {
            model,
            tokenizer,
            template,
            path: path.to_path_buf(),
            cached: Vec::new(),
        })
    }

    pub fn context_length(&self) -> usize {
        self.model.context_length
    }

    /// Forget the conversation's cache (the next prompt is fed whole).
    pub fn reset(&mut self) {
        self.cached.clear();
        self.model.clear();
    }

    /// Feeds `prompt` (reusing the cached prefix when possible) and returns the last logits
    /// and how many tokens were reused.
    pub fn prefill(&mut self, prompt: &[u32]) -> Result<(Vec<f32>, usize)> {
        if prompt.is_empty() {
            return Err(LlmError::Tokenizer("empty prompt".into()));
        }
        if prompt.len() >= self.context_length() {
            return Err(LlmError::ContextOverflow {
                prompt: prompt.len(),
                context: self.context_length(),
            });
        }
        let reusable = self.cached.len() < prompt.len() && prompt.starts_with(&self.cached);
        let start = if reusable { self.cached.len() } else { 0 };
        if !reusable {
            self.cached.clear();
        }
        let logits = self.model.forward(&prompt[start..], start)?;
        self.cached = prompt.to_vec();
        Ok((logits, start))
    }

    /// Feeds one token after the cached ones; returns the next logits.
    pub fn step(&mut self, token: u32) -> Result<Vec<f32>> {
        let pos = self.cached.len();
        let logits = self.model.forward(&[token], pos)?;
        self.cached.push(token);
        Ok(logits)
    }

    /// Generates an answer to `prompt` (token ids), sending text deltas to `on_event` as they
    /// become whole characters, and a final `Done`. `cancel` is checked before every token.
    pub fn generate(
        &mut self,
        prompt: &[u32],
        params: &GenParams,
        cancel: &AtomicBool,
        on_event: &mut dyn FnMut(AnswerEvent),
    ) -> Result<Generation> {
        let mut sampler = Sampler::new(params.sampling.clone())?;
        let t0 = Instant::now();
        let (mut logits, reused) = self.prefill(prompt)?;
        let prefill_time = t0.elapsed();
        let t1 = Instant::now();
        let room = self.context_length().saturating_sub(prompt.len());
        let max_new = params.max_tokens.min(room);
        let mut stream = DeltaStream::new(params.stop.clone());
        let mut out: Vec<u32> = Vec::new();
        let mut recent: Vec<u32> = prompt.to_vec();
        let mut text = String::new();
        let mut finish = FinishReason::Length;
        let mut produced = 0;
        while produced < max_new {
            if cancel.load(Ordering::Relaxed) {
                finish = FinishReason::Cancelled;
                break;
            }
            ban_repeats(&out, params.no_repeat_ngram, &mut logits);
            let tok = sampler.sample(&mut logits, &recent);
            produced += 1;
            if self.tokenizer.eot_ids.contains(&tok) {
                finish = FinishReason::Stop;
                break;
            }
            out.push(tok);
            recent.push(tok);
            text = self.tokenizer.decode(&out, true)?;
            let step = stream.push(&text);
            if !step.delta.is_empty() {
                on_event(AnswerEvent::Delta { text: step.delta });
            }
            if step.stop {
                finish = FinishReason::Stop;
                break;
            }
            if produced < max_new {
                logits = self.step(tok)?;
            }
        }
        let rest = stream.finish(&text);
        if !rest.is_empty() {
            on_event(AnswerEvent::Delta { text: rest });
        }
        let answer = match params
            .stop
            .iter()
            .filter_map(|s| text.find(s.as_str()))
            .min()
        {
            Some(cut) => text[..cut].to_string(),
            None => text.trim_end_matches('\u{FFFD}').to_string(),
        };
        on_event(AnswerEvent::Done {
            finish,
            prompt_tokens: prompt.len(),
            completion_tokens: produced,
        });
        Ok(Generation {
            text: answer,
            finish,
            prompt_tokens: prompt.len(),
            completion_tokens: produced,
            reused_tokens: reused,
            untrusted_tokens: 0,
            control_tokens_in_untrusted: 0,
            prefill_time,
            decode_time: t1.elapsed(),
        })
    }
}

/// Rules out every token that would complete an `n`-gram already in `out`. A small model
/// decoding greedily otherwise repeats a sentence until its token limit ("It is a cat that
/// is a member of the Felidae family." three times over, describing a cat photo).
fn ban_repeats(out: &[u32], n: usize, logits: &mut [f32]) {
    if n < 2 || out.len() < n {
        return;
    }
    let prefix = &out[out.len() - (n - 1)..];
    for start in 0..=out.len() - n {
        if &out[start..start + n - 1] == prefix {
            if let Some(l) = logits.get_mut(out[start + n - 1] as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod ngram_tests {
    #[test]
    fn the_token_that_would_repeat_an_ngram_is_ruled_out() {
        let mut logits = vec![0.0f32; 8];
        // "1 2 3 4" then "1 2 3": a 4th token 4 would repeat the 4-gram.
        super::ban_repeats(&[1, 2, 3, 4, 5, 1, 2, 3], 4, &mut logits);
        assert_eq!(logits[4], f32::NEG_INFINITY);
        assert!(logits.iter().enumerate().all(|(i, &l)| i == 4 || l == 0.0));
        // Off, too short, or no earlier match: nothing changes.
        let mut logits = vec![0.0f32; 8];
        super::ban_repeats(&[1, 2, 3, 4, 5, 1, 2, 3], 0, &mut logits);
        super::ban_repeats(&[1, 2], 4, &mut logits);
        super::ban_repeats(&[1, 2, 3, 4, 5, 6, 7], 4, &mut logits);
        assert!(logits.iter().all(|&l| l == 0.0));
    }
}
