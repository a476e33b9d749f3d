//! `percept batch DIR`: every image and audio file under DIR through the stages, one JSON
//! line each in `--out`; a rerun resumes. Choices are documented in `crate::batch`.

use super::common::StageArgs;
use crate::progress::BatchView;
use anyhow::Context;
use percept_pipeline::batch::{run_folder, FolderRun};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder to walk (recursively; symlinks are followed, loops are not).
    pub dir: PathBuf,
    /// Ask the LLM this about every file (its transcript or its image description).
    #[arg(long)]
    pub question: Option<String>,
    /// The JSONL report; appended to, and read back to skip files already recorded.
    #[arg(long, default_value = "results.jsonl")]
    pub out: PathBuf,
    /// Leave out paths (relative to DIR) matching this glob, e.g. '*.txt' or 'drafts/**'.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Process every file even after failures, and exit 0 (failures are in the report).
    #[arg(long)]
    pub keep_going: bool,
    /// Process again files whose earlier record has status error.
    #[arg(long)]
    pub retry_errors: bool,
    /// Bound of every queue between stages (default: the pipeline's channel_capacity).
    #[arg(long)]
    pub queue: Option<usize>,
    #[command(flatten)]
    pub stages: StageArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let def = args.stages.resolve()?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                // Second Ctrl-C: leave now; every record already written is whole.
                std::process::exit(130);
            }
            eprintln!("percept: stopping after the files in flight (Ctrl-C again to quit now)");
        })
        .context("installing the Ctrl-C handler")?;
    }
    let run = FolderRun {
        dir: args.dir.clone(),
        out: args.out.clone(),
        exclude: args.exclude.clone(),
        question: args.question.clone(),
        keep_going: args.keep_going,
        retry_errors: args.retry_errors,
        queue: args.queue,
    };
    let view = BatchView::default();
    let summary = run_folder(&def, &run, &stop, &view)?;
    view.finish();
    eprintln!(
        "batch: {} ok, {} error, {} skipped (already in {}){} in {:.1} s",
        summary.ok,
        summary.error,
        summary.skipped,
        args.out.display(),
        if summary.not_started > 0 {
            format!(", {} not started", summary.not_started)
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    if summary.error > 0 && !args.keep_going {
        anyhow::bail!(
            "{} files failed (see {}); --keep-going processes every file and exits 0",
            summary.error,
            args.out.display()
        );
    }
    Ok(())
}
