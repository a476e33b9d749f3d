//! `percept listen`: a spoken conversation through the microphone (or a file played as one).
//! The session is `percept_pipeline::listen`; this prints its turns.

use super::common::{notice_on_stderr, resolve, show_notices, stop_on_ctrl_c};
use super::common::{LlmArgs, PipelineArgs, VadArgs};
use percept_listen::Pace;
use percept_pipeline::listen::{describe_image_file, session, Event, Live, Source};
use std::io::Write;
use std::path::PathBuf;

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
        Some(path) if args.fast => Source::File(path, Pace::Fast),
        Some(path) => Source::File(path, Pace::RealTime),
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
