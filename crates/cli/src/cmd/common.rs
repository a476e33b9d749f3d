//! Argument groups shared by the commands: the pipeline and its stage overrides, the LLM's
//! model and sampling (every one optional: one left out keeps the pipeline's value), and the
//! endpointing of the live path; and the few printing helpers several commands use.

use anyhow::Context;
use percept_listen::VadConfig;
use percept_pipeline::listen::NoticeFn;
use percept_pipeline::{load_def, Overrides, PipelineDef, Sampling};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `--pipeline`, `--device` and the model choices of the speech and vision stages.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PipelineArgs {
    /// Named pipeline (`default`, `quality`) or a pipeline .toml: models, devices, sampling,
    /// system prompt, probing; explicit flags win. Default: `default`.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Whisper model id or directory (default: the pipeline's).
    #[arg(long)]
    pub whisper: Option<String>,
    /// CLIP model folder (default: the pipeline's CLIP from the store, when present).
    #[arg(long, value_name = "DIR")]
    pub clip_dir: Option<PathBuf>,
    /// CLIP tags per image (default: the pipeline's, 5).
    #[arg(long)]
    pub tags: Option<usize>,
    /// Longest audio decoded per file, in seconds (default: 14400; 3600 in `serve`).
    #[arg(long)]
    pub max_audio_s: Option<u32>,
    /// Longest video decoded, in seconds (default: --max-audio-s when given, else 14400;
    /// 3600 in `serve`).
    #[arg(long)]
    pub max_video_s: Option<u32>,
}

/// `--device`: every stage's device, on commands where `--device` means nothing else.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DeviceArg {
    /// Run every stage on this device: cpu, cuda:N or metal (default: the pipeline's).
    #[arg(long)]
    pub device: Option<String>,
}

/// Endpointing thresholds.
#[derive(Debug, Clone, clap::Args)]
pub struct VadArgs {
    /// A frame is speech when this many dB above the adaptive noise floor.
    #[arg(long, default_value_t = 12.0)]
    pub vad_threshold_db: f32,
    /// Frames quieter than this (dBFS) are never speech.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true)]
    pub vad_min_level_db: f32,
    /// Silence that ends an utterance.
    #[arg(long, default_value_t = 500)]
    pub hangover_ms: u32,
    /// Voiced audio an utterance needs (shorter bursts are ignored as noise).
    #[arg(long, default_value_t = 200)]
    pub min_speech_ms: u32,
    /// Audio kept before speech starts.
    #[arg(long, default_value_t = 200)]
    pub pre_roll_ms: u32,
    /// Longest utterance; longer speech is cut here.
    #[arg(long, default_value_t = 28_000)]
    pub max_utterance_ms: u32,
    /// How fast the noise floor may rise (dB per second).
    #[arg(long, default_value_t = 3.0)]
    pub floor_rise_db: f32,
    /// Start transcribing after this much silence, before the hangover ends (0 = off); the
    /// result is kept only if no speech follows.
    #[arg(long, default_value_t = 150)]
    pub early_ms: u32,
}

impl VadArgs {
    pub fn config(&self) -> VadConfig {
        VadConfig {
            threshold_db: self.vad_threshold_db,
            min_level_db: self.vad_min_level_db,
            hangover_ms: self.hangover_ms,
            min_speech_ms: self.min_speech_ms,
            pre_roll_ms: self.pre_roll_ms,
            max_utterance_ms: self.max_utterance_ms,
            floor_rise_db_per_s: self.floor_rise_db,
            early_ms: self.early_ms,
            ..VadConfig::default()
        }
    }
}

/// Model and sampling options of the LLM stage.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LlmArgs {
    /// Model id from the store, a directory holding one .gguf file, or a .gguf file.
    #[arg(long)]
    pub model: Option<String>,
    /// System message (default: the pipeline's).
    #[arg(long)]
    pub system: Option<String>,
    /// 0 = greedy.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// 0 = off.
    #[arg(long)]
    pub top_k: Option<usize>,
    /// 1 = off.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// 0 = off.
    #[arg(long)]
    pub min_p: Option<f32>,
    /// The repetition guard; 1 = off.
    #[arg(long)]
    pub repeat_penalty: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// Stop the answer at this text (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Re-encode Q4_1/Q5_x blocks as Q8_0 at load and run candle's decoder (slower than
    /// percept's own, which runs the file's blocks as stored; kept to compare the two).
    #[arg(long)]
    pub convert_q8: bool,
}

impl LlmArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            llm: self.model.clone(),
            system: self.system.clone(),
            sampling: Sampling {
                temperature: self.temperature,
                top_k: self.top_k,
                top_p: self.top_p,
                min_p: self.min_p,
                repeat_penalty: self.repeat_penalty,
                repeat_last_n: None,
                no_repeat_ngram: None,
                seed: self.seed,
                max_tokens: self.max_tokens,
            },
            convert_q8: self.convert_q8,
            ..Overrides::default()
        }
    }

    /// The generation parameters of `def`, plus the `--stop` texts.
    pub fn gen_params(&self, def: &PipelineDef) -> percept_llm::GenParams {
        let mut p = def.gen_params();
        p.stop = self.stop.clone();
        p
    }
}

/// The pipeline, every stage's device and the LLM's options: the flags of the commands that
/// run the whole pipeline (ask, batch, fleet, serve, bench pipeline).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct StageArgs {
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub llm: LlmArgs,
}

impl StageArgs {
    /// The pipeline with all these flags applied (see [`resolve`]).
    pub fn resolve(&self) -> anyhow::Result<PipelineDef> {
        resolve(
            &self.pipeline,
            self.device.device.as_deref(),
            Some(&self.llm),
        )
    }
}

/// The pipeline a command runs, with the flags applied: announced on stderr when named.
pub fn resolve(
    pipeline: &PipelineArgs,
    device: Option<&str>,
    llm: Option<&LlmArgs>,
) -> anyhow::Result<PipelineDef> {
    let name = pipeline.pipeline.as_deref();
    let mut def = load_def(name.unwrap_or("default"))?;
    if let Some(name) = name {
        eprintln!("pipeline {name}: {}", def.description);
    }
    let mut o = llm.map(LlmArgs::overrides).unwrap_or_default();
    o.whisper = pipeline.whisper.clone();
    o.clip = pipeline
        .clip_dir
        .as_ref()
        .map(|d| d.to_string_lossy().into_owned());
    o.tags = pipeline.tags;
    o.max_audio_s = pipeline.max_audio_s;
    o.max_video_s = pipeline.max_video_s;
    o.device = device.map(str::to_string);
    def.apply(&o);
    def.runtime.apply_threads();
    Ok(def)
}

/// Prints the loader's notices (a missing CLIP model, a template warning).
pub fn show_notices(notices: &[String]) {
    for n in notices {
        eprintln!("percept: {n}");
    }
}

/// Prints the notices a session sends while it runs (a dropped utterance, the device in use).
pub fn notice_on_stderr() -> NoticeFn {
    Arc::new(|n: &str| eprintln!("percept: {n}"))
}

/// A flag Ctrl-C sets: the session stops (listening, or the answer being written).
pub fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

/// The default pipeline with only CLIP chosen (`--clip-dir`) and a device: for the commands
/// that use the vision stage alone.
pub fn vision_def(
    clip_dir: Option<&std::path::Path>,
    device: Option<&str>,
) -> anyhow::Result<PipelineDef> {
    let pipeline = PipelineArgs {
        clip_dir: clip_dir.map(std::path::Path::to_path_buf),
        ..PipelineArgs::default()
    };
    resolve(&pipeline, device, None)
}

/// CLIP, or the error line that says how to get it.
pub fn require_clip(def: &PipelineDef) -> anyhow::Result<percept_clip::Clip> {
    percept_pipeline::load_clip(def)?
        .ok_or_else(|| anyhow::anyhow!(percept_pipeline::missing_clip_line()))
}
