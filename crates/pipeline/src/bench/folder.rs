//! `percept bench pipeline`: one batch run pipelined (stages overlapping) and strictly
//! sequential (one file through every stage at a time), with the models loaded once.

use super::cpu_time_s;
use crate::batch::record::Kind;
use crate::batch::walk::{self, Entry};
use crate::batch::{models, partition, process, RunOptions, StageCounts, Tally};
use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use serde::Serialize;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct FolderBench {
    pub files: usize,
    pub audio: usize,
    pub images: usize,
    pub not_media: usize,
    pub cores: usize,
    /// Sequential wall time over pipelined; above 1 the overlap pays.
    pub sequential_over_pipelined: Option<f64>,
    pub runs: Vec<ModeResult>,
    /// Lines for the person (a missing model).
    #[serde(skip)]
    pub notices: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ModeResult {
    pub mode: &'static str,
    pub files: u64,
    pub errors: u64,
    pub wall_s: f64,
    pub files_per_s: f64,
    pub cpu_s: Option<f64>,
    /// Process CPU time / (wall time x cores).
    pub cpu_utilisation: Option<f64>,
    pub stages: Vec<StageBusy>,
}

#[derive(Debug, Serialize)]
pub struct StageBusy {
    pub stage: String,
    pub items: u64,
    pub busy_s: f64,
    /// busy / wall: how much of the run this stage was working.
    pub busy_share: f64,
}

struct Quiet;

impl crate::batch::Observer for Quiet {
    fn file(&self, _: &str, _: &str, _: &StageCounts) {}
    fn tick(&self, _: &StageCounts) {}
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `dir`'s images and audio both ways (or only sequentially); `question` ("" for none)
/// is asked about every file; `queue` bounds every channel between stages.
pub fn folder(
    def: &PipelineDef,
    dir: &Path,
    question: &str,
    queue: usize,
    sequential_only: bool,
) -> Result<FolderBench> {
    let walked = walk::walk(dir, &globset::GlobSet::empty(), None)?;
    let (work, other) = partition(walked.entries);
    if work.is_empty() {
        return Err(PipelineError::invalid(format!(
            "{}: no image or audio files to run",
            dir.display()
        )));
    }
    let question = Some(question.to_string()).filter(|q| !q.is_empty());
    let count = |k| work.iter().filter(|e: &&Entry| e.kind == k).count();
    let (audio, images) = (count(Kind::Audio), count(Kind::Image));
    let (models, notices) = models::load(def, audio > 0, images > 0, question.is_some())?;
    // One file of each kind first, so neither timed run pays for first-call allocations.
    let warm: Vec<Entry> = [Kind::Audio, Kind::Image]
        .iter()
        .filter_map(|k| work.iter().find(|e| e.kind == *k).cloned())
        .collect();
    let mode = |name, entries: &[Entry]| run_mode(name, &models, entries, &question, queue);
    mode("sequential", &warm)?;
    let mut runs = Vec::new();
    if !sequential_only {
        runs.push(mode("pipelined", &work)?);
    }
    runs.push(mode("sequential", &work)?);
    let ratio = match runs.as_slice() {
        [p, s] => Some(s.wall_s / p.wall_s.max(1e-9)),
        _ => None,
    };
    Ok(FolderBench {
        files: work.len(),
        audio,
        images,
        not_media: other.len(),
        cores: cores(),
        sequential_over_pipelined: ratio,
        runs,
        notices,
    })
}

fn run_mode(
    mode: &'static str,
    models: &models::Models,
    work: &[Entry],
    question: &Option<String>,
    queue: usize,
) -> Result<ModeResult> {
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
        &Quiet,
        &mut tally,
        &mut |_, _| Ok(()),
    )?;
    let wall = t0.elapsed().as_secs_f64().max(1e-9);
    let cpu = cpu0.zip(cpu_time_s()).map(|(a, b)| b - a);
    Ok(ModeResult {
        mode,
        files: tally.ok + tally.error,
        errors: tally.error,
        wall_s: wall,
        files_per_s: (tally.ok + tally.error) as f64 / wall,
        cpu_s: cpu,
        cpu_utilisation: cpu.map(|c| c / (wall * cores() as f64)),
        stages: report
            .stages
            .iter()
            .map(|s| StageBusy {
                stage: s.stage.clone(),
                items: s.items,
                busy_s: s.busy.as_secs_f64(),
                busy_share: s.busy.as_secs_f64() / wall,
            })
            .collect(),
    })
}
