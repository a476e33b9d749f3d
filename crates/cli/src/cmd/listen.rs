//! `percept listen`: a spoken conversation through the microphone (or a file played as one).
//! The session is `percept_pipeline::listen`; this prints its turns.

use super::common::{resolve, show_notices, LlmArgs, PipelineArgs};
use anyhow::Context;
use percept_listen::{Pace, VadConfig};
use percept_pipeline::listen::{describe_image_file, session, Event, Live, NoticeFn, Source};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input device name or id (see `percept devices`); default: the system default.
    #[arg(long)]
    pub device: Option<String>,
    /// Play this audio file through the live path instead of the microphone (real-time pace).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// With --input: as fast as the models go, and never drop an utterance.
    #[arg(long, requires = "input")]
    pub fast: bool,
    /// An image that stays in the conversation's context (CLIP tags when available, facts).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// Run every stage on this device: cpu, cuda:N or metal (`--device` names the microphone).
    #[arg(long)]
    pub compute_device: Option<String>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Utterances waiting for the models; when full the oldest waiting one is dropped.
    #[arg(long, default_value_t = 2)]
    pub queue: usize,
    /// Stop after this many answered turns.
    #[arg(long)]
    pub max_turns: Option<usize>,
    /// One JSON object per turn instead of `you:` / `percept:` lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub vad: VadArgs,
    #[command(flatten)]
    pub llm: LlmArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = resolve(
        &args.pipeline,
        args.compute_device.as_deref(),
        Some(&args.llm),
    )?;
    let image = match &args.image {
        Some(path) => {
            let (part, notices) = describe_image_file(&def, path)?;
            show_notices(&notices);
            Some(part)
        }
        None => None,
    };
    let source = match args.input.clone() {
        Some(path) => Source::File(
            path,
            if args.fast {
                Pace::Fast
            } else {
                Pace::RealTime
            },
        ),
        None => Source::Mic(args.device.clone()),
    };
    let live = Live {
        source,
        vad: args.vad.config(),
        queue: args.queue,
        def,
        image,
        max_turns: args.max_turns,
        stop: stop_on_ctrl_c()?,
        notice: notice_on_stderr(),
    };
    let json = args.json;
    let mut out = std::io::stdout().lock();
    let mut print = |ev: Event| -> std::io::Result<()> {
        match (json, ev) {
            (false, Event::Heard { text }) => write!(out, "you: {text}\npercept: ")?,
            (false, Event::Delta(text)) => write!(out, "{text}")?,
            (false, Event::Done(_)) => writeln!(out)?,
            (true, Event::Done(r)) => writeln!(out, "{}", serde_json::to_string(r)?)?,
            (true, _) => {}
        }
        out.flush()
    };
    let turns = session(&live, &mut print)?;
    eprintln!("percept: {} turn(s)", turns.len());
    Ok(())
}

/// A flag Ctrl-C sets: the session stops listening and the answer being written stops.
pub(crate) fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst))
        .context("installing the Ctrl-C handler")?;
    Ok(stop)
}

pub(crate) fn notice_on_stderr() -> NoticeFn {
    Arc::new(|n: &str| eprintln!("percept: {n}"))
}
