//! `percept bench pipeline DIR`: the same batch run pipelined (stages overlapping) and
//! strictly sequential (one file through every stage at a time) in one process, with the
//! models loaded once; prints the speed-up, each stage's busy time and the CPU use.

use super::common::{show_notices, StageArgs};
use percept_pipeline::bench;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[command(mut_arg("max_tokens", |a| a.default_value("32")))]
pub struct Args {
    /// A folder of images and audio (e.g. a copy of assets/).
    pub dir: PathBuf,
    /// Only the sequential baseline.
    #[arg(long)]
    pub sequential_only: bool,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The question asked about every file; "" leaves the LLM stage out.
    #[arg(
        long,
        default_value = "What is this file about? Answer in one sentence."
    )]
    pub question: String,
    /// Bound of every queue between stages (default: the pipeline's channel_capacity).
    #[arg(long)]
    pub queue: Option<usize>,
    #[command(flatten)]
    pub stages: StageArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = args.stages.resolve()?;
    let queue = args.queue.unwrap_or(def.runtime.channel_capacity);
    let b = bench::folder(&def, &args.dir, &args.question, queue, args.sequential_only)?;
    show_notices(&b.notices);
    if args.json {
        let mut v = serde_json::to_value(&b)?;
        v["dir"] = args.dir.display().to_string().into();
        println!("{v}");
        return Ok(());
    }
    let cores = b.cores;
    println!(
        "{}: {} files ({} audio, {} images; {} other files left out), {cores} cores",
        args.dir.display(),
        b.files,
        b.audio,
        b.images,
        b.not_media
    );
    for r in &b.runs {
        let cpu = match (r.cpu_s, r.cpu_utilisation) {
            (Some(c), Some(u)) => format!("{c:.1} s = {:.0}% of {cores} cores", u * 100.0),
            _ => "n/a".to_string(),
        };
        let (mode, wall, rate) = (r.mode, r.wall_s, r.files_per_s);
        println!(
            "{mode:<10} {wall:>7.2} s  {rate:>6.2} files/s  CPU {cpu} ({} errors)",
            r.errors
        );
        for s in r.stages.iter().filter(|s| s.items > 0) {
            let (share, busy) = (s.busy_share * 100.0, s.busy_s);
            println!(
                "  {:<13} {:>4} items  busy {busy:>7.2} s  ({share:>3.0}% of wall)",
                s.stage, s.items
            );
        }
    }
    if let Some(r) = b.sequential_over_pipelined {
        println!("sequential / pipelined wall time: {r:.2} (above 1: the overlap pays)");
    }
    Ok(())
}
