//! `percept ask "question"`: one answer from the text LLM, streamed to stdout.

use anyhow::Context;
use percept_core::{AnswerEvent, Prompt, Untrusted};
use percept_llm::{answer, Engine, GenParams, LoadOptions, SamplingParams, DEFAULT_MODEL};
use std::io::Write;
use std::sync::atomic::AtomicBool;

const DEFAULT_SEED: u64 = 299792458;
const DEFAULT_MAX_TOKENS: usize = 512;

/// Model and sampling options shared by `ask` and `chat`.
#[derive(Debug, Clone, clap::Args)]
pub struct LlmArgs {
    /// Model id from the store, a directory holding one .gguf file, or a .gguf file.
    #[arg(long, default_value = DEFAULT_MODEL)]
    pub model: String,
    /// System message (default: the model's own template default, if any).
    #[arg(long)]
    pub system: Option<String>,
    /// 0 = greedy.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0)]
    pub top_k: usize,
    /// 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub top_p: f32,
    /// 0 = off.
    #[arg(long, default_value_t = 0.0)]
    pub min_p: f32,
    /// 1 = off.
    #[arg(long, default_value_t = 1.0)]
    pub repeat_penalty: f32,
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
    #[arg(long, default_value_t = DEFAULT_MAX_TOKENS)]
    pub max_tokens: usize,
    /// Stop the answer at this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Re-encode Q4_1/Q5_x blocks as Q8_0 at load: faster prefill, but the extra rounding can
    /// change greedy answers at near-ties (off: the file's own blocks, as llama.cpp runs them).
    #[arg(long)]
    pub convert_q8: bool,
}

impl LlmArgs {
    pub fn gen_params(&self) -> GenParams {
        GenParams {
            sampling: SamplingParams {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                seed: self.seed,
                ..SamplingParams::default()
            },
            max_tokens: self.max_tokens,
            stop: self.stop.clone(),
        }
    }

    /// Takes the pipeline's system prompt and sampling values for every option still at its
    /// command-line default, so an explicit flag always wins.
    pub fn apply_pipeline(&mut self, def: &crate::pipelines::PipelineDef) {
        let s = &def.sampling;
        if self.system.is_none() {
            self.system = def.system.clone();
        }
        fn take<T: PartialEq + Copy>(field: &mut T, default: T, from: Option<T>) {
            if let (true, Some(v)) = (*field == default, from) {
                *field = v;
            }
        }
        take(&mut self.temperature, 0.0, s.temperature);
        take(&mut self.top_k, 0, s.top_k);
        take(&mut self.top_p, 1.0, s.top_p);
        take(&mut self.min_p, 0.0, s.min_p);
        take(&mut self.repeat_penalty, 1.0, s.repeat_penalty);
        take(&mut self.seed, DEFAULT_SEED, s.seed);
        take(&mut self.max_tokens, DEFAULT_MAX_TOKENS, s.max_tokens);
        if self.model == DEFAULT_MODEL {
            self.model = def.llm.clone();
        }
    }

    pub fn load(&self) -> anyhow::Result<Engine> {
        let opts = LoadOptions {
            convert_to_q8: self.convert_q8,
            ..LoadOptions::default()
        };
        let engine = Engine::load(&self.model, &opts)
            .with_context(|| format!("loading model `{}`", self.model))?;
        if let Some(w) = &engine.template.warning {
            eprintln!("warning: {w}");
        }
        Ok(engine)
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question (optional with --audio, which speaks it).
    pub question: Option<String>,
    #[command(flatten)]
    pub media: super::ask_media::MediaArgs,
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Named pipeline (`default`, `quality`) or a pipeline .toml: models, sampling, probing;
    /// explicit flags win. Default: `default`.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Print one JSON object (transcript, tags, facts, answer, per-stage timings) instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(mut args: Args) -> anyhow::Result<()> {
    let def = crate::pipelines::resolve(
        args.pipeline.as_deref(),
        &mut args.llm,
        &mut args.media.whisper,
        &mut args.media.clip_dir,
    )?;
    if !args.media.is_empty() {
        return super::ask_media::run(args.question, &args.media, &args.llm, args.json, &def);
    }
    let Some(question) = args.question else {
        anyhow::bail!("give a question, as text or with --audio FILE");
    };
    let mut engine = args.llm.load()?;
    let prompt = Prompt {
        system: args.llm.system.clone(),
        question: Some(Untrusted {
            label: "question".into(),
            text: question.clone(),
        }),
        ..Prompt::default()
    };
    let never = AtomicBool::new(false);
    let json = args.json;
    let mut out = std::io::stdout().lock();
    let mut print = |ev: AnswerEvent| {
        if let (false, AnswerEvent::Delta { text }) = (json, &ev) {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    };
    let gen = answer(
        &mut engine,
        &prompt,
        &args.llm.gen_params(),
        &never,
        &mut print,
    )?;
    if json {
        let v = serde_json::json!({
            "model": engine.path.display().to_string(),
            "answer": gen.text,
            "finish": gen.finish,
            "prompt_tokens": gen.prompt_tokens,
            "completion_tokens": gen.completion_tokens,
            "prefill_ms": gen.prefill_time.as_secs_f64() * 1e3,
            "decode_ms": gen.decode_time.as_secs_f64() * 1e3,
        });
        println!("{v}");
    } else {
        println!();
    }
    Ok(())
}
