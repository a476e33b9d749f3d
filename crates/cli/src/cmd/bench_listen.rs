//! `percept bench listen --input FILE`: the live path on a file played in real time (the
//! measurement is `percept_pipeline::bench::listen`); prints each turn's latency split.

use super::common::{notice_on_stderr, resolve, stop_on_ctrl_c, LlmArgs, PipelineArgs, VadArgs};
use percept_listen::Pace;
use percept_pipeline::listen::{Live, Source};
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
    let live = Live {
        source: Source::File(args.input.clone(), Pace::RealTime),
        vad: args.vad.config(),
        queue: args.queue,
        def: resolve(&args.pipeline, None, Some(&args.llm))?,
        image: None,
        max_turns: None,
        stop: stop_on_ctrl_c()?,
        notice: notice_on_stderr(),
    };
    let b = percept_pipeline::bench::listen(&live)?;
    if args.json {
        let mut v = serde_json::to_value(&b)?;
        v["input"] = args.input.display().to_string().into();
        println!("{v}");
        return Ok(());
    }
    println!(
        "bench listen: {} ({} turns) whisper {} + {} on {} threads",
        args.input.display(),
        b.turns.len(),
        b.whisper,
        b.model,
        b.threads
    );
    println!(
        "utt  end_s   latency_ms  endpoint_ms  transcribe_ms  wait_ms  first_token_ms  transcript"
    );
    let f = |v: Option<f64>| v.map_or("-".to_string(), |x| format!("{x:.0}"));
    for t in &b.turns {
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
    let (median, max) = (b.latency_ms_median, b.latency_ms_max);
    println!("end of speech -> first answer token: median {median:.0} ms, max {max:.0} ms (target < 1500 ms)");
    Ok(())
}
