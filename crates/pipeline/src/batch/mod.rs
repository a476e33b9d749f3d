//! The batch engine behind `percept batch`: a folder of media through the speech, vision and LLM stages into a
//! crash-safe JSONL report (see `journal`), resumable by path + size + mtime.
//!
//! Choices:
//! - A file that is neither image nor audio by content is recorded with kind `other` and
//!   status `error` ("not an image or audio file (detected: ...)"), so the report accounts for
//!   every file; `--exclude` keeps such files out.
//! - Error records are final on a rerun (the same bytes fail the same way) unless
//!   `--retry-errors`; a retried or changed file gets a new line, and the last line per path wins.
//! - Without `--keep-going` the first failure stops new files from starting (those in flight
//!   finish and are recorded) and the exit status is non-zero.

pub mod folder;
pub mod journal;
pub mod models;
pub mod record;
pub mod sniff;
pub mod stages;
pub mod walk;

pub use folder::{run_folder, FolderObserver, FolderRun, Summary};
use record::{Kind, Record, Results, Status, Timings};
use stages::Work;
pub use stages::{RunOptions, StageCounts};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use walk::Entry;

/// What a batch reports as it goes; the CLI draws its progress bar from it.
pub trait Observer {
    /// A file finished: `what` is "ok" or "error: ...".
    fn file(&self, name: &str, what: &str, counts: &StageCounts);
    /// Called while waiting, so a display can refresh the per-stage counts.
    fn tick(&self, counts: &StageCounts);
}

/// Counts for the closing summary.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub ok: u64,
    pub error: u64,
}

/// The record line for a file that finished (or failed) the stages.
pub fn record_line(entry: &Entry, outcome: &Result<Work, (String, Timings)>) -> (Status, String) {
    let empty = Results::default();
    let mut timings: Timings = Timings::new();
    if entry.sniff_secs > 0.0 {
        timings.insert("sniff", entry.sniff_secs);
    }
    let (status, error, results) = match outcome {
        Ok(w) => {
            timings.extend(w.timings.iter().map(|(k, v)| (*k, *v)));
            (Status::Ok, None, &w.results)
        }
        Err((e, t)) => {
            timings.extend(t.iter().map(|(k, v)| (*k, *v)));
            (Status::Error, Some(e.clone()), &empty)
        }
    };
    let rec = Record {
        path: &entry.display,
        path_b64: record::path_b64(&entry.path),
        size: entry.size,
        mtime: entry.mtime,
        kind: entry.kind,
        status,
        error,
        results,
        timings: &timings,
    };
    (status, rec.to_line())
}

/// Splits walked entries into those that need the stages and those recorded as they are.
pub fn partition(entries: Vec<Entry>) -> (Vec<Entry>, Vec<Entry>) {
    entries.into_iter().partition(|e| {
        e.error.is_none() && matches!(e.kind, Kind::Audio | Kind::Image | Kind::Video)
    })
}

/// Runs the stages over `work`, calling `write` with each finished file's entry and line.
#[allow(clippy::too_many_arguments)]
pub fn process(
    models: &models::Models,
    work: &[Entry],
    opts: &RunOptions,
    stop: &Arc<AtomicBool>,
    stop_on_error: bool,
    progress: &dyn Observer,
    tally: &mut Tally,
    write: &mut dyn FnMut(&Entry, &str) -> crate::Result<()>,
) -> crate::Result<percept_core::PipelineReport> {
    let counts = Arc::new(StageCounts::default());
    let c2 = counts.clone();
    let mut on_done = |id: usize, result: Result<Work, (percept_core::ItemError, Timings)>| {
        let entry = &work[id];
        let outcome = result.map_err(|(e, t)| (e.to_string(), t));
        let (status, line) = record_line(entry, &outcome);
        write(entry, &line)?;
        match &outcome {
            Ok(_) => tally.ok += 1,
            Err(_) => {
                tally.error += 1;
                if stop_on_error {
                    stop.store(true, Ordering::SeqCst);
                }
            }
        }
        let what = match (&outcome, status) {
            (Err((e, _)), _) => format!("error: {e}"),
            _ => "ok".to_string(),
        };
        progress.file(&entry.display, &what, &c2);
        Ok(())
    };
    let mut tick = || progress.tick(&counts);
    let report = stages::run(models, work, opts, stop, &counts, &mut on_done, &mut tick)?;
    Ok(report)
}
