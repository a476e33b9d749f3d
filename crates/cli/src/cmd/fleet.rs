//! `percept fleet`: `percept batch` across machines on one Redis (logic in percept-fleet).

use super::common::StageArgs;
use percept_fleet::{EnqueueOptions, Run, Settings, WorkerOptions, PATIENCE};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
#[group(id = "mode", required = true, multiple = false, args = ["enqueue", "work", "status", "collect"])]
pub struct Args {
    /// Redis URL (redis://[:PASSWORD@]HOST:PORT[/DB]).
    #[arg(long, env = "PERCEPT_REDIS", default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// The run's name: its keys are percept:RUN:* in Redis.
    #[arg(long, default_value = "batch")]
    run: String,
    /// Queue DIR's files, walked as `percept batch DIR` (recorded or queued files are skipped).
    #[arg(long, value_name = "DIR")]
    enqueue: Option<PathBuf>,
    /// Process queued files until every one is recorded (or for ever with --follow).
    #[arg(long)]
    work: bool,
    /// Print queued, pending, ok, error and dead-lettered counts and the workers.
    #[arg(long)]
    status: bool,
    /// Write every recorded file's line, once, to this JSONL file.
    #[arg(long, value_name = "OUT")]
    collect: Option<PathBuf>,
    /// Enqueue: ask the LLM this about every file.
    #[arg(long)]
    question: Option<String>,
    /// Enqueue: leave out paths (relative to DIR) matching this glob.
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Enqueue: queue again files whose record is an error.
    #[arg(long)]
    retry_errors: bool,
    /// Enqueue: deliveries of a file before it is dead-lettered.
    #[arg(long, default_value_t = 3)]
    max_attempts: u64,
    /// Enqueue: seconds a file may go without its worker's heartbeat before another takes it.
    #[arg(long, default_value_t = 60.0)]
    claim_idle_s: f64,
    /// Enqueue: a worker on which no file finished for this long stops (the file is hung).
    #[arg(long, default_value_t = 1800.0)]
    file_timeout_s: f64,
    /// Work: this worker's name (default: HOST-PID).
    #[arg(long)]
    name: Option<String>,
    /// Work: wait for new files instead of exiting when all are recorded.
    #[arg(long)]
    follow: bool,
    /// Status as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    stages: StageArgs,
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let run = Run::new(a.redis, a.run);
    if let Some(dir) = a.enqueue {
        let settings =
            Settings::from_secs(a.question, a.max_attempts, a.claim_idle_s, a.file_timeout_s)?;
        let opts = EnqueueOptions::new(dir, a.exclude, a.retry_errors, settings);
        eprintln!("{}", percept_fleet::enqueue(&run, &opts, PATIENCE)?);
    } else if a.work {
        let def = a.stages.resolve()?;
        let opts = WorkerOptions::new(a.name, a.follow);
        let s = percept_fleet::work(&run, &def, &opts, &|l| eprintln!("{}: {l}", opts.name))?;
        eprintln!("{}: {s}", opts.name);
    } else if a.status {
        print!("{}", percept_fleet::status(&run, PATIENCE)?.render(a.json));
    } else if let Some(out) = a.collect {
        eprintln!("{}", percept_fleet::collect(&run, &out, PATIENCE)?);
    }
    Ok(())
}
