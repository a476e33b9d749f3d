//! `percept batch DIR`: every image and audio file under DIR through the stages, one JSON
//! line each in `--out`; a rerun resumes. Choices are documented in `crate::batch`.

use super::common::{resolve, show_notices, DeviceArg, LlmArgs, PipelineArgs};
use crate::progress::Progress;
use anyhow::Context;
use globset::{Glob, GlobSetBuilder};
use percept_pipeline::batch::journal::{Done, Journal};
use percept_pipeline::batch::record::Kind;
use percept_pipeline::batch::{models, partition, process, record_line, walk, RunOptions, Tally};
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
    pub pipeline: PipelineArgs,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub llm: LlmArgs,
}

pub(crate) fn globs(patterns: &[String]) -> anyhow::Result<globset::GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p).with_context(|| format!("--exclude {p}"))?);
    }
    Ok(b.build()?)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let def = resolve(
        &args.pipeline,
        args.device.device.as_deref(),
        Some(&args.llm),
    )?;
    anyhow::ensure!(
        args.dir.exists(),
        "{}: no such file or directory",
        args.dir.display()
    );
    let opened = Journal::open(&args.out)?;
    let mut journal = opened.journal;
    let scan = opened.scan;
    if scan.cut_bytes > 0 {
        eprintln!(
            "percept: {}: cut {} bytes of an unfinished last record (from an interrupted run)",
            args.out.display(),
            scan.cut_bytes
        );
    }
    if scan.bad_lines > 0 {
        eprintln!(
            "percept: {}: {} lines are not records; kept as they are",
            args.out.display(),
            scan.bad_lines
        );
    }
    let done = Done::from_records(&scan.records, args.retry_errors);
    let walked = walk::walk(&args.dir, &globs(&args.exclude)?, Some(&args.out))?;
    for note in &walked.notes {
        eprintln!("percept: {note}");
    }
    let found = walked.entries.len();
    let todo: Vec<_> = walked
        .entries
        .into_iter()
        .filter(|e| !done.contains(&e.display, e.size, e.mtime))
        .collect();
    let skipped = found - todo.len();
    let (work, direct) = partition(todo);

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
    // Models load before the bar appears, so their messages do not tear it.
    let will_run = !work.is_empty() && (direct.is_empty() || args.keep_going);
    let models = if will_run {
        let (models, notices) = models::load(
            &def,
            work.iter().any(|e| e.kind == Kind::Audio),
            work.iter().any(|e| e.kind == Kind::Image),
            args.question.is_some(),
        )?;
        show_notices(&notices);
        Some(models)
    } else {
        None
    };
    let progress = Progress::new((work.len() + direct.len()) as u64);
    let mut tally = Tally::default();
    for e in &direct {
        let err = e.error.clone().unwrap_or_default();
        let (_, line) = record_line(e, &Err((err.clone(), Default::default())));
        journal.append(&line)?;
        tally.error += 1;
        progress.file(&e.display, &format!("error: {err}"), &Default::default());
    }
    if tally.error > 0 && !args.keep_going {
        stop.store(true, Ordering::SeqCst);
    }
    if let (Some(models), false) = (&models, stop.load(Ordering::SeqCst)) {
        let opts = RunOptions {
            question: args.question.clone(),
            sequential: false,
            capacity: args.queue.unwrap_or(def.runtime.channel_capacity),
        };
        let mut write = |line: &str| journal.append(line);
        process(
            models,
            &work,
            &opts,
            &stop,
            !args.keep_going,
            &progress,
            &mut tally,
            &mut write,
        )?;
    }
    progress.finish();
    let not_started = (work.len() + direct.len()) as u64 - tally.ok - tally.error;
    eprintln!(
        "batch: {} ok, {} error, {} skipped (already in {}){} in {:.1} s",
        tally.ok,
        tally.error,
        skipped,
        args.out.display(),
        if not_started > 0 {
            format!(", {not_started} not started")
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    if tally.error > 0 && !args.keep_going {
        anyhow::bail!(
            "{} files failed (see {}); --keep-going processes every file and exits 0",
            tally.error,
            args.out.display()
        );
    }
    Ok(())
}
