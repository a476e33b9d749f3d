//! Progress on stderr: an indicatif bar on a terminal, one plain line per file otherwise
//! (logs and CI keep a readable record).

use indicatif::{ProgressBar, ProgressStyle};
use percept_pipeline::batch::{FolderObserver, Observer, StageCounts};
use std::cell::{Cell, OnceCell};
use std::io::IsTerminal;
use std::time::Instant;

pub enum Progress {
    Bar(ProgressBar),
    Plain {
        total: u64,
        done: Cell<u64>,
        started: Instant,
    },
}

impl Progress {
    pub fn new(total: u64) -> Self {
        let template = "{bar:30} {pos}/{len} files · {per_sec} · ETA {eta} · {msg}";
        match terminal_bar(total, template) {
            Some(bar) => Progress::Bar(bar),
            None => Progress::Plain {
                total,
                done: Cell::new(0),
                started: Instant::now(),
            },
        }
    }

    /// One file finished (`what` is "ok" or the error).
    pub fn file(&self, path: &str, what: &str, counts: &StageCounts) {
        match self {
            Progress::Bar(bar) => {
                bar.set_message(counts.line());
                bar.inc(1);
            }
            Progress::Plain {
                total,
                done,
                started,
            } => {
                done.set(done.get() + 1);
                let done = done.get();
                let secs = started.elapsed().as_secs_f64();
                let rate = done as f64 / secs.max(1e-9);
                let eta = (*total - done.min(*total)) as f64 / rate.max(1e-9);
                eprintln!(
                    "[{done}/{total}] {path}: {what} ({rate:.2} files/s, ETA {eta:.0} s; {})",
                    counts.line()
                );
            }
        }
    }

    pub fn tick(&self, counts: &StageCounts) {
        if let Progress::Bar(bar) = self {
            bar.set_message(counts.line());
        }
    }

    pub fn finish(&self) {
        if let Progress::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// An indicatif bar of `len` steps drawn by `template` when stderr is a terminal; `None`
/// otherwise, where the caller prints plain lines instead.
pub fn terminal_bar(len: u64, template: &str) -> Option<ProgressBar> {
    std::io::stderr().is_terminal().then(|| {
        let bar = ProgressBar::new(len);
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    })
}

/// `percept batch`'s observer: notices on stderr, then the progress once the stages are
/// loaded and the files counted.
#[derive(Default)]
pub struct BatchView(OnceCell<Progress>);

impl BatchView {
    pub fn finish(&self) {
        if let Some(p) = self.0.get() {
            p.finish();
        }
    }
}

impl Observer for BatchView {
    fn file(&self, name: &str, what: &str, counts: &StageCounts) {
        if let Some(p) = self.0.get() {
            p.file(name, what, counts);
        }
    }

    fn tick(&self, counts: &StageCounts) {
        if let Some(p) = self.0.get() {
            p.tick(counts);
        }
    }
}

impl FolderObserver for BatchView {
    fn notice(&self, line: &str) {
        eprintln!("percept: {line}");
    }

    fn begin(&self, total: u64) {
        let _ = self.0.set(Progress::new(total));
    }
}
