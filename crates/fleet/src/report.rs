//! `--status` (counts, dead letters, workers) and `--collect` (every record once, as JSONL).

use crate::link::Link;
use crate::{FleetError, Result, Run, GROUP};
use redis::streams::{StreamInfoConsumersReply, StreamPendingReply};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// Where a run stands.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Status {
    pub run: String,
    /// Enqueued and not taken by any worker yet.
    pub queued: u64,
    /// Taken by a worker and not yet recorded.
    pub pending: u64,
    /// Recorded with status ok.
    pub ok: u64,
    /// Recorded with status error (the dead-lettered ones not counted).
    pub error: u64,
    pub dead: Vec<Dead>,
    pub workers: Vec<Consumer>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Dead {
    pub path: String,
    pub attempts: u64,
}

/// A worker as the consumer group knows it.
#[derive(Debug, Clone, Serialize)]
pub struct Consumer {
    pub name: String,
    /// Entries it holds.
    pub pending: u64,
    /// Milliseconds since it last read or renewed.
    pub idle_ms: u64,
}

/// Reads `run`'s state; waits up to `patience` for Redis.
pub fn status(run: &Run, patience: Duration) -> Result<Status> {
    let mut link = Link::open(&run.url, Some(patience))?;
    let (files, queued, done, dead) = (
        run.key("files"),
        run.key("queued"),
        run.key("done"),
        run.key("dead"),
    );
    let exists: bool = link.call(|c| redis::cmd("EXISTS").arg(&files).query(c))?;
    if !exists {
        return Err(FleetError::NoRun(run.name.clone()));
    }
    let (left, pending, records, dead_files, consumers): (
        u64,
        StreamPendingReply,
        Vec<String>,
        Vec<String>,
        StreamInfoConsumersReply,
    ) = link.call(|c| {
        redis::pipe()
            .cmd("SCARD")
            .arg(&queued)
            .cmd("XPENDING")
            .arg(&files)
            .arg(GROUP)
            .cmd("HVALS")
            .arg(&done)
            .cmd("HVALS")
            .arg(&dead)
            .cmd("XINFO")
            .arg("CONSUMERS")
            .arg(&files)
            .arg(GROUP)
            .query(c)
    })?;
    let mut dead: Vec<Dead> = dead_files
        .iter()
        .filter_map(|d| serde_json::from_str(d).ok())
        .collect();
    dead.sort_by(|a, b| a.path.cmp(&b.path));
    let (mut ok, mut error) = (0u64, 0u64);
    for r in &records {
        match serde_json::from_str::<serde_json::Value>(r) {
            Ok(v) if v["status"] == "ok" => ok += 1,
            _ => error += 1,
        }
    }
    let pending = pending.count() as u64;
    Ok(Status {
        run: run.name.clone(),
        queued: left.saturating_sub(pending),
        pending,
        ok,
        error: error.saturating_sub(dead.len() as u64),
        dead,
        workers: consumers
            .consumers
            .into_iter()
            .map(|c| Consumer {
                name: c.name,
                pending: c.pending as u64,
                idle_ms: c.idle as u64,
            })
            .collect(),
    })
}

impl Status {
    /// The text `--status` prints, or one line of JSON.
    pub fn render(&self, json: bool) -> String {
        match json {
            true => serde_json::to_string(self).unwrap_or_default() + "\n",
            false => self.to_string(),
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "run {}: {} queued, {} pending, {} ok, {} error, {} dead",
            self.run,
            self.queued,
            self.pending,
            self.ok,
            self.error,
            self.dead.len()
        )?;
        for d in &self.dead {
            writeln!(f, "dead: {} ({} attempts)", d.path, d.attempts)?;
        }
        for w in &self.workers {
            writeln!(
                f,
                "worker {}: {} pending, idle {:.1} s",
                w.name,
                w.pending,
                w.idle_ms as f64 / 1000.0
            )?;
        }
        Ok(())
    }
}

/// What a collect wrote.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Collected {
    pub out: std::path::PathBuf,
    pub records: u64,
    /// Files enqueued and not recorded yet (absent from the file).
    pub unfinished: u64,
}

/// Writes every recorded file's line once, in path order, to `out` (whole: written beside
/// it, synced, then renamed over it).
pub fn collect(run: &Run, out: &Path, patience: Duration) -> Result<Collected> {
    let mut link = Link::open(&run.url, Some(patience))?;
    let (done, queued) = (run.key("done"), run.key("queued"));
    let (records, left): (HashMap<String, String>, u64) = link.call(|c| {
        redis::pipe()
            .cmd("HGETALL")
            .arg(&done)
            .cmd("SCARD")
            .arg(&queued)
            .query(c)
    })?;
    let sorted: BTreeMap<String, String> = records.into_iter().collect();
    let io = |what: &'static str, p: &Path| {
        let path = p.display().to_string();
        move |source| FleetError::Io { what, path, source }
    };
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    let part = out.with_file_name(name);
    let mut file = std::fs::File::create(&part).map_err(io("creating", &part))?;
    let mut text = String::new();
    for line in sorted.values() {
        text.push_str(line);
        text.push('\n');
    }
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io("writing", &part))?;
    std::fs::rename(&part, out).map_err(io("renaming over", out))?;
    Ok(Collected {
        out: out.to_path_buf(),
        records: sorted.len() as u64,
        unfinished: left,
    })
}

impl fmt::Display for Collected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} records in {}", self.records, self.out.display())?;
        if self.unfinished > 0 {
            write!(f, "; {} files not recorded yet", self.unfinished)?;
        }
        Ok(())
    }
}
