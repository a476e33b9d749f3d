//! `percept ask`: a question (typed, or spoken with --audio) about images, clips and videos; the
//! answer streams to stdout. The session itself is `percept_pipeline::ask`.

use super::common::{show_notices, stop_on_ctrl_c, StageArgs};
use percept_pipeline::{load_stages, AskRequest};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The question (optional with --audio, which speaks it).
    pub question: Option<String>,
    /// An image to ask about (repeatable).
    #[arg(long = "image", value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// A spoken question (any audio format), transcribed by Whisper. Beside a typed question
    /// it is a clip to ask about instead, and its words are data, never instructions.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// A video to ask about (MP4, MOV, MKV, WebM, AVI): its audio track is transcribed and
    /// frames sampled every 2 s and at scene changes are described, all as data beside the
    /// question, the frames labelled by their time.
    #[arg(long, value_name = "FILE")]
    pub video: Option<PathBuf>,
    /// Skip question-guided probing (the LLM's candidate answers scored by CLIP).
    #[arg(long)]
    pub no_probe: bool,
    #[command(flatten)]
    pub stages: StageArgs,
    /// Print one JSON object (transcript, tags, facts, answer, per-stage timings) instead of streaming text.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let request = AskRequest {
        question: args.question.clone(),
        audio: args.audio.clone(),
        images: args.images.clone(),
        video: args.video.clone(),
        probe: !args.no_probe,
        stop: args.stages.llm.stop.clone(),
    };
    request.validate()?;
    // Ctrl-C, from the start (loading takes seconds): the answer stops (or never starts) and
    // what is done so far prints.
    let cancel = stop_on_ctrl_c()?;
    let def = args.stages.resolve()?;
    let stages = load_stages(&def, request.need())?;
    show_notices(&stages.notices);
    let json = args.json;
    let mut out = std::io::stdout().lock();
    let mut print = |text: &str| {
        if !json {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    };
    let outcome = percept_pipeline::ask(stages, &def, &request, cancel, &mut print)?;
    show_notices(&outcome.errors);
    if json {
        // Through a Value, as the server's replies go: keys sorted and f32 scores written as
        // the f64 they widen to, so the two front ends print the same numbers.
        let report = serde_json::to_value(outcome.report(args.question.as_deref()))?;
        writeln!(out, "{report}")?;
    } else {
        writeln!(out)?;
    }
    Ok(())
}
