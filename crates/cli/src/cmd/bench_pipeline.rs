//! `percept bench pipeline DIR`: the same batch run pipelined (stages overlapping) and
//! strictly sequential (one file through every stage at a time) in one process, with the
//! models loaded once; prints the speed-up, each stage's busy time and the CPU use.

use super::common::{resolve, show_notices, DeviceArg, LlmArgs, PipelineArgs};
use crate::progress::Progress;
use percept_pipeline::batch::models::{self, Models};
use percept_pipeline::batch::record::Kind;
use percept_pipeline::batch::walk::Entry;
use percept_pipeline::batch::{partition, process, walk, RunOptions, Tally};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

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
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub llm: LlmArgs,
}

#[derive(Debug, serde::Serialize)]
struct ModeResult {
    mode: &'static str,
    files: u64,
    errors: u64,
    wall_s: f64,
    files_per_s: f64,
    cpu_s: Option<f64>,
    /// Process CPU time / (wall time x cores).
    cpu_utilisation: Option<f64>,
    stages: Vec<StageBusy>,
}

#[derive(Debug, serde::Serialize)]
struct StageBusy {
    stage: String,
    items: u64,
    busy_s: f64,
    /// busy / wall: how much of the run this stage was working.
    busy_share: f64,
}

/// User + system CPU time of this process so far (Linux; clock ticks are 1/100 s there).
fn cpu_time_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after its closing ')' are fixed.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

fn run_mode(
    mode: &'static str,
    models: &Models,
    work: &[Entry],
    question: &Option<String>,
    queue: usize,
) -> anyhow::Result<ModeResult> {
    let opts = RunOptions {
        question: question.clone(),
        sequential: mode == "sequential",
        capacity: queue,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let mut tally = Tally::default();
    let cpu0 = cpu_time_s();
    let t0 = Instant::now();
    let report = process(
        models,
        work,
        &opts,
        &stop,
        false,
        &Progress::hidden(),
        &mut tally,
        &mut |_| Ok(()),
    )?;
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_time_s()).map(|(a, b)| b - a);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(ModeResult {
        mode,
        files: tally.ok + tally.error,
        errors: tally.error,
        wall_s: wall,
        files_per_s: (tally.ok + tally.error) as f64 / wall.max(1e-9),
        cpu_s: cpu,
        cpu_utilisation: cpu.map(|c| c / (wall.max(1e-9) * cores)),
        stages: report
            .stages
            .iter()
            .map(|s| StageBusy {
                stage: s.stage.clone(),
                items: s.items,
                busy_s: s.busy.as_secs_f64(),
                busy_share: s.busy.as_secs_f64() / wall.max(1e-9),
            })
            .collect(),
    })
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = resolve(
        &args.pipeline,
        args.device.device.as_deref(),
        Some(&args.llm),
    )?;
    let capacity = def.runtime.channel_capacity;
    let walked = walk::walk(&args.dir, &globset::GlobSet::empty(), None)?;
    let (work, other) = partition(walked.entries);
    anyhow::ensure!(
        !work.is_empty(),
        "{}: no image or audio files to run",
        args.dir.display()
    );
    let question = Some(args.question).filter(|q| !q.is_empty());
    let has = |k| work.iter().any(|e: &Entry| e.kind == k);
    let (models, notices) =
        models::load(&def, has(Kind::Audio), has(Kind::Image), question.is_some())?;
    show_notices(&notices);
    // One file of each kind first, so neither timed run pays for first-call allocations.
    let warm: Vec<Entry> = [Kind::Audio, Kind::Image]
        .iter()
        .filter_map(|k| work.iter().find(|e| e.kind == *k).cloned())
        .collect();
    let queue = args.queue.unwrap_or(capacity);
    run_mode("sequential", &models, &warm, &question, queue)?;
    let mut results = Vec::new();
    if !args.sequential_only {
        results.push(run_mode("pipelined", &models, &work, &question, queue)?);
    }
    results.push(run_mode("sequential", &models, &work, &question, queue)?);
    let ratio = match results.as_slice() {
        [p, s] => Some(s.wall_s / p.wall_s.max(1e-9)),
        _ => None,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if args.json {
        let v = serde_json::json!({
            "dir": args.dir.display().to_string(),
            "files": work.len(),
            "not_media": other.len(),
            "cores": cores,
            "sequential_over_pipelined": ratio,
            "runs": results,
        });
        println!("{v}");
        return Ok(());
    }
    println!(
        "{}: {} files ({} audio, {} images; {} other files left out), {cores} cores",
        args.dir.display(),
        work.len(),
        work.iter().filter(|e| e.kind == Kind::Audio).count(),
        work.iter().filter(|e| e.kind == Kind::Image).count(),
        other.len()
    );
    for r in &results {
        println!(
            "{:<10} {:>7.2} s  {:>6.2} files/s  CPU {} ({} errors)",
            r.mode,
            r.wall_s,
            r.files_per_s,
            match (r.cpu_s, r.cpu_utilisation) {
                (Some(c), Some(u)) => format!("{c:.1} s = {:.0}% of {cores} cores", u * 100.0),
                _ => "n/a".to_string(),
            },
            r.errors
        );
        for s in r.stages.iter().filter(|s| s.items > 0) {
            println!(
                "  {:<13} {:>4} items  busy {:>7.2} s  ({:>3.0}% of wall)",
                s.stage,
                s.items,
                s.busy_s,
                s.busy_share * 100.0
            );
        }
    }
    if let Some(r) = ratio {
        println!("sequential / pipelined wall time: {r:.2} (above 1: the overlap pays)");
    }
    Ok(())
}
