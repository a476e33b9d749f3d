//! One `percept batch DIR` run: open the journal, walk, skip what is recorded, load only the
//! stages the files need, run them and record every file.

use super::journal::{Done, Journal};
use super::record::{self, Kind};
use super::{models, partition, process, record_line, walk, Observer, RunOptions, Tally};
use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use globset::{Glob, GlobSetBuilder};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What to run over which folder.
#[derive(Debug, Clone, Default)]
pub struct FolderRun {
    pub dir: PathBuf,
    /// The JSONL report: appended to, and read back to skip files already recorded.
    pub out: PathBuf,
    /// Globs (relative to `dir`) left out of the walk.
    pub exclude: Vec<String>,
    pub question: Option<String>,
    /// Every file runs even after failures.
    pub keep_going: bool,
    /// Files whose earlier record is an error run again.
    pub retry_errors: bool,
    /// Bound of every queue between stages (default: the definition's channel capacity).
    pub queue: Option<usize>,
}

/// How a run ended.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub ok: u64,
    pub error: u64,
    /// Already in the report.
    pub skipped: u64,
    /// Not started because of a failure (without `keep_going`) or a stop.
    pub not_started: u64,
}

/// What a folder run reports beyond per-file progress.
pub trait FolderObserver: Observer {
    /// A line for the person (a torn record cut, a symlink loop, a missing CLIP model).
    fn notice(&self, line: &str);
    /// The stages are loaded and `total` files will be recorded.
    fn begin(&self, total: u64);
}

/// Runs `run` with `def`'s stages; `stop` ends it after the files in flight.
pub fn run_folder(
    def: &PipelineDef,
    run: &FolderRun,
    stop: &Arc<AtomicBool>,
    view: &dyn FolderObserver,
) -> Result<Summary> {
    if !run.dir.exists() {
        return Err(PipelineError::invalid(format!(
            "{}: no such file or directory",
            run.dir.display()
        )));
    }
    let opened = Journal::open(&run.out)?;
    let mut journal = opened.journal;
    let scan = opened.scan;
    let out = run.out.display();
    if scan.cut_bytes > 0 {
        view.notice(&format!(
            "{out}: cut {} bytes of an unfinished last record (from an interrupted run)",
            scan.cut_bytes
        ));
    }
    if scan.bad_lines > 0 {
        view.notice(&format!(
            "{out}: {} lines are not records; kept as they are",
            scan.bad_lines
        ));
    }
    let done = Done::from_records(&scan.records, run.retry_errors);
    let walked = walk::walk(&run.dir, &globs(&run.exclude)?, Some(&run.out))?;
    for note in &walked.notes {
        view.notice(note);
    }
    let found = walked.entries.len();
    let todo: Vec<_> = walked
        .entries
        .into_iter()
        .filter(|e| !done.contains(&record::path_key(&e.path, &e.display), e.size, e.mtime))
        .collect();
    let skipped = (found - todo.len()) as u64;
    let (work, direct) = partition(todo);

    // Models load before the progress display begins, so their notices do not tear it.
    let will_run = !work.is_empty() && (direct.is_empty() || run.keep_going);
    let models = if will_run {
        let (models, notices) = models::load(
            def,
            work.iter()
                .any(|e| matches!(e.kind, Kind::Audio | Kind::Video)),
            work.iter()
                .any(|e| matches!(e.kind, Kind::Image | Kind::Video)),
            run.question.is_some(),
        )?;
        notices.iter().for_each(|n| view.notice(n));
        Some(models)
    } else {
        None
    };
    let total = (work.len() + direct.len()) as u64;
    view.begin(total);
    let mut tally = Tally::default();
    for e in &direct {
        let err = e.error.clone().unwrap_or_default();
        let (_, line) = record_line(e, &Err((err.clone(), Default::default())));
        journal.append(&line)?;
        tally.error += 1;
        view.file(&e.display, &format!("error: {err}"), &Default::default());
    }
    if tally.error > 0 && !run.keep_going {
        stop.store(true, Ordering::SeqCst);
    }
    if let (Some(models), false) = (&models, stop.load(Ordering::SeqCst)) {
        let opts = RunOptions {
            question: run.question.clone(),
            sequential: false,
            capacity: run.queue.unwrap_or(def.runtime.channel_capacity),
        };
        let mut write = |_: &walk::Entry, line: &str| journal.append(line);
        process(
            models,
            &work,
            &opts,
            stop,
            !run.keep_going,
            view,
            &mut tally,
            &mut write,
        )?;
    }
    Ok(Summary {
        ok: tally.ok,
        error: tally.error,
        skipped,
        not_started: total - tally.ok - tally.error,
    })
}

/// `--exclude` patterns as one matcher; a bad pattern is named.
pub fn globs(patterns: &[String]) -> Result<globset::GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let glob =
            Glob::new(p).map_err(|e| PipelineError::invalid(format!("--exclude {p}: {e}")))?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| PipelineError::invalid(format!("--exclude: {e}")))
}
