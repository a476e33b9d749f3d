//! `percept bench listen --input FILE`: the live path on a file played in real time; for each
//! utterance, the time from the end of speech (the endpointer's end point, in stream time) to
//! the first answer token, split into endpointing, transcription and prefill.

use super::common::{resolve, LlmArgs, PipelineArgs};
use super::listen::{notice_on_stderr, stop_on_ctrl_c, VadArgs};
use percept_listen::Pace;
use percept_pipeline::listen::{session, Event, Live, Source};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Speech with pauses between utterances (any audio format).
    #[arg(long, value_name = "FILE")]
    input: PathBuf,
    #[command(flatten)]
    pipeline: PipelineArgs,
    /// Utterances waiting for the models.
    #[arg(long, default_value_t = 2)]
    queue: usize,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    vad: VadArgs,
    #[command(flatten)]
    llm: LlmArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = resolve(&args.pipeline, None, Some(&args.llm))?;
    let (whisper, model) = (def.whisper.clone(), def.llm.clone());
    let live = Live {
        source: Source::File(args.input.clone(), Pace::RealTime),
        vad: args.vad.config(),
        queue: args.queue,
        def,
        image: None,
        max_turns: None,
        stop: stop_on_ctrl_c()?,
        notice: notice_on_stderr(),
    };
    let mut quiet = |_: Event| Ok(());
    let turns = session(&live, &mut quiet)?;
    if turns.is_empty() {
        anyhow::bail!("{}: no utterance was answered", args.input.display());
    }
    let mut lat: Vec<f64> = turns.iter().filter_map(|t| t.latency_ms).collect();
    lat.sort_by(f64::total_cmp);
    let median = lat.get(lat.len() / 2).copied().unwrap_or(f64::NAN);
    let max = lat.last().copied().unwrap_or(f64::NAN);
    let threads = std::thread::available_parallelism().map_or(0, |n| n.get());
    if args.json {
        let v = serde_json::json!({
            "input": args.input.display().to_string(),
            "whisper": whisper,
            "model": model,
            "threads": threads,
            "turns": turns,
            "latency_ms_median": median,
            "latency_ms_max": max,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "bench listen: {} ({} turns) whisper {} + {} on {threads} threads",
        args.input.display(),
        turns.len(),
        whisper,
        model
    );
    println!(
        "utt  end_s   latency_ms  endpoint_ms  transcribe_ms  wait_ms  first_token_ms  transcript"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}"));
    for t in &turns {
        println!(
            "{:>3}  {:>6.2}  {:>10}  {:>11}  {:>13.0}  {:>7.0}  {:>14}  {}",
            t.utterance,
            t.end_s,
            f(t.latency_ms),
            f(t.endpoint_ms),
            t.transcribe_ms,
            t.wait_ms,
            f(t.first_token_ms),
            t.transcript
        );
    }
    println!("end of speech -> first answer token: median {median:.0} ms, max {max:.0} ms (target < 1500 ms)");
    Ok(())
}
