//! A worker: takes one file at a time (its own unacknowledged entries first, then entries
//! other workers left idle past `claim_idle`, then new ones), runs them through the batch
//! stages on a thread of their own, and records each as it finishes (record, leave `queued`,
//! ack: one MULTI/EXEC). While files are in flight it renews their claim (XCLAIM JUSTID), so
//! a slow file is not taken from a live worker; when no file finished for `file_timeout` it
//! stops with [`FleetError::Hung`] and the file goes to another worker or the dead letters.

use crate::enqueue::bytes_path;
use crate::link::Link;
use crate::{FleetError, Result, Run, Settings, GROUP};
use percept_pipeline::batch::models::{self, Models};
use percept_pipeline::batch::record::Timings;
use percept_pipeline::batch::walk::{self, Entry};
use percept_pipeline::batch::{process, record_line, Observer, RunOptions, StageCounts, Tally};
use percept_pipeline::{PipelineDef, PipelineError};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use redis::{from_redis_value, Value};
use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// How long a worker waits for new entries before it looks again for idle ones.
const BLOCK_MS: usize = 1000;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// The consumer name, unique per worker (default: host and process id).
    pub name: String,
    /// Files taken at once. More than one lets a file's speech and another's vision overlap,
    /// but a file that hangs the worker then takes the others down with it: they count an
    /// attempt each and can be dead-lettered beside it. [`WorkerOptions::new`] takes one.
    pub prefetch: usize,
    /// Keep waiting for files when the queue is empty, instead of exiting.
    pub follow: bool,
}

impl WorkerOptions {
    /// `name` (default: [`Self::default_name`]), one file at a time, so a dead-lettered file
    /// is always the one that stopped its workers; workers scale by their number.
    pub fn new(name: Option<String>, follow: bool) -> WorkerOptions {
        WorkerOptions {
            name: name.unwrap_or_else(Self::default_name),
            prefetch: 1,
            follow,
        }
    }

    /// `host-pid`, so two workers never share a name.
    pub fn default_name() -> String {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "worker".to_string());
        format!("{host}-{}", std::process::id())
    }
}

/// What one worker did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkSummary {
    pub ok: u64,
    pub error: u64,
    pub dead: u64,
    /// Entries taken over from workers that went idle (died, or were cut off).
    pub claimed: u64,
    /// Times it waited for Redis to come back.
    pub outages: u64,
}

impl std::fmt::Display for WorkSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ok, {} error, {} dead-lettered, {} taken over from idle workers, waited {} times for Redis",
            self.ok, self.error, self.dead, self.claimed, self.outages
        )
    }
}

/// One stream entry this worker holds.
struct Taken {
    id: String,
    /// The recorded path (as walked by enqueue).
    path: String,
    /// The absolute path opened on the shared storage.
    open: std::path::PathBuf,
    key: String,
    member: String,
}

/// Runs files of `run` until none is left (or for ever with `follow`); `log` gets a line per
/// file and the notices of the model loader.
pub fn work(
    run: &Run,
    def: &PipelineDef,
    opts: &WorkerOptions,
    log: &dyn Fn(&str),
) -> Result<WorkSummary> {
    let mut link = Link::open(&run.url, None)?;
    let meta_key = run.key("meta");
    let meta: HashMap<String, String> =
        link.call(|c| redis::cmd("HGETALL").arg(&meta_key).query(c))?;
    if meta.is_empty() {
        return Err(FleetError::NoRun(run.name.clone()));
    }
    let settings = Settings::from_fields(run, &meta)?;
    let (models, notices) = models::load(def, true, true, settings.question.is_some())?;
    notices.iter().for_each(|n| log(n));
    let mut w = Worker {
        run,
        link,
        settings,
        models,
        opts,
        log,
        cursor: "0-0".to_string(),
        summary: WorkSummary::default(),
    };
    loop {
        let taken = w.take()?;
        if taken.is_empty() {
            if !opts.follow && w.finished()? {
                break;
            }
            continue;
        }
        w.run_files(taken)?;
    }
    // Every entry it took is acknowledged: leave the group, so `--status` lists live workers
    // (and dead ones, with their idle time, until they are restarted under the same name).
    let (files, name) = (run.key("files"), opts.name.clone());
    w.link.call(|c| {
        redis::cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(&files)
            .arg(GROUP)
            .arg(&name)
            .query::<()>(c)
    })?;
    w.summary.outages = w.link.outages;
    Ok(w.summary)
}

struct Worker<'a> {
    run: &'a Run,
    link: Link,
    settings: Settings,
    models: Models,
    opts: &'a WorkerOptions,
    log: &'a dyn Fn(&str),
    /// Where XAUTOCLAIM goes on scanning the pending entries.
    cursor: String,
    summary: WorkSummary,
}

impl Worker<'_> {
    /// Up to `prefetch` entries: this worker's own unacknowledged ones (a reply lost to a
    /// dropped connection), then idle ones of other workers, then new ones (waiting a second).
    fn take(&mut self) -> Result<Vec<Taken>> {
        let files = self.run.key("files");
        let (me, n) = (self.opts.name.clone(), self.opts.prefetch.max(1));
        let read = |id: &'static str, block: bool| {
            let files = files.clone();
            let me = me.clone();
            move |c: &mut redis::Connection| {
                let mut cmd = redis::cmd("XREADGROUP");
                cmd.arg("GROUP").arg(GROUP).arg(&me).arg("COUNT").arg(n);
                if block {
                    cmd.arg("BLOCK").arg(BLOCK_MS);
                }
                cmd.arg("STREAMS")
                    .arg(&files)
                    .arg(id)
                    .query::<Option<StreamReadReply>>(c)
            }
        };
        let own = self.link.call(read("0", false))?;
        let own = self.accept(ids(own), false)?;
        if !own.is_empty() {
            return Ok(own);
        }
        let idle_ms = self.settings.claim_idle.as_millis() as u64;
        let cursor = self.cursor.clone();
        let claimed: StreamAutoClaimReply = self.link.call(|c| {
            redis::cmd("XAUTOCLAIM")
                .arg(&files)
                .arg(GROUP)
                .arg(&me)
                .arg(idle_ms)
                .arg(&cursor)
                .arg("COUNT")
                .arg(n)
                .query(c)
        })?;
        self.cursor = claimed.next_stream_id;
        let claimed = self.accept(claimed.claimed, false)?;
        if !claimed.is_empty() {
            self.summary.claimed += claimed.len() as u64;
            return Ok(claimed);
        }
        let fresh = self.link.call(read(">", true))?;
        self.accept(ids(fresh), true)
    }

    /// The entries to run: each delivered at most `max_attempts` times; the rest are
    /// dead-lettered, and entries whose fields are gone (trimmed) are acknowledged.
    fn accept(&mut self, entries: Vec<StreamId>, fresh: bool) -> Result<Vec<Taken>> {
        let mut out = Vec::new();
        for e in entries {
            let Some(t) = taken(&e) else {
                self.ack_only(&e.id)?;
                continue;
            };
            let attempts = if fresh { 1 } else { self.deliveries(&t.id)? };
            if attempts > self.settings.max_attempts {
                self.dead_letter(&t, attempts - 1)?;
            } else {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn deliveries(&mut self, id: &str) -> Result<u64> {
        let files = self.run.key("files");
        let reply: StreamPendingCountReply = self.link.call(|c| {
            redis::cmd("XPENDING")
                .arg(&files)
                .arg(GROUP)
                .arg(id)
                .arg(id)
                .arg(1)
                .query(c)
        })?;
        Ok(reply.ids.first().map_or(1, |p| p.times_delivered as u64))
    }

    fn ack_only(&mut self, id: &str) -> Result<()> {
        let files = self.run.key("files");
        self.link.call(|c| {
            redis::cmd("XACK")
                .arg(&files)
                .arg(GROUP)
                .arg(id)
                .query::<()>(c)
        })
    }

    /// Records `t` as an error naming its attempts, lists it in `dead`, and acks it.
    fn dead_letter(&mut self, t: &Taken, attempts: u64) -> Result<()> {
        let entry = inspect(t);
        let why = format!(
            "dead-lettered after {attempts} attempts: no worker finished it (each died, or stopped at the run's file timeout, while processing it)"
        );
        let (_, line) = record_line(&entry, &Err((why, Timings::new())));
        let dead = serde_json::json!({ "path": t.path, "attempts": attempts }).to_string();
        self.commit(t, &line, Some(&dead))?;
        self.summary.dead += 1;
        (self.log)(&format!(
            "{}: dead-lettered after {attempts} attempts",
            t.path
        ));
        Ok(())
    }

    /// Records a finished file: its record in `done` (the last one wins, so a file that ran
    /// twice is still recorded once), out of `queued`, acknowledged; all or nothing.
    fn commit(&mut self, t: &Taken, line: &str, dead: Option<&str>) -> Result<()> {
        let line = as_walked(t, line);
        let (files, done, dead_key, queued) = (
            self.run.key("files"),
            self.run.key("done"),
            self.run.key("dead"),
            self.run.key("queued"),
        );
        self.link.call(|c| {
            let mut p = redis::pipe();
            p.atomic();
            p.cmd("HSET")
                .arg(&done)
                .arg(&t.key)
                .arg(line.trim_end())
                .ignore();
            match dead {
                Some(d) => p.cmd("HSET").arg(&dead_key).arg(&t.key).arg(d).ignore(),
                None => p.cmd("HDEL").arg(&dead_key).arg(&t.key).ignore(),
            };
            p.cmd("SREM").arg(&queued).arg(&t.member).ignore();
            p.cmd("XACK").arg(&files).arg(GROUP).arg(&t.id).ignore();
            // Done entries leave the stream, so Redis holds only what is queued or in flight.
            p.cmd("XDEL").arg(&files).arg(&t.id).ignore();
            p.query::<()>(c)
        })
    }

    /// Every file recorded: nothing queued is left unrecorded.
    fn finished(&mut self) -> Result<bool> {
        let queued = self.run.key("queued");
        let left: u64 = self
            .link
            .call(|c| redis::cmd("SCARD").arg(&queued).query(c))?;
        Ok(left == 0)
    }

    /// Runs `taken` through the stages and records each file as it finishes.
    fn run_files(&mut self, taken: Vec<Taken>) -> Result<()> {
        let mut work: Vec<Entry> = Vec::new();
        let mut work_taken: Vec<Taken> = Vec::new();
        for t in taken {
            let e = inspect(&t);
            match &e.error {
                Some(err) => {
                    let (_, line) = record_line(&e, &Err((err.clone(), Timings::new())));
                    self.commit(&t, &line, None)?;
                    self.report(&t, &line);
                }
                None => {
                    work.push(e);
                    work_taken.push(t);
                }
            }
        }
        if work.is_empty() {
            return Ok(());
        }
        let rx = spawn_stages(&self.models, self.settings.question.clone(), work);
        let mut open: Vec<bool> = vec![true; work_taken.len()];
        let beat = (self.settings.claim_idle / 4).max(Duration::from_millis(100));
        let mut next_beat = Instant::now() + beat;
        let mut progress = Instant::now();
        loop {
            let wait = next_beat.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(Msg::Done(i, line)) => {
                    let Some(t) = work_taken.get(i) else { continue };
                    self.commit(t, &line, None)?;
                    self.report(t, &line);
                    open[i] = false;
                    progress = Instant::now();
                }
                Ok(Msg::End(r)) => return r.map_err(FleetError::from),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(FleetError::Invalid(
                        "the stage thread ended without a result".to_string(),
                    ))
                }
            }
            if Instant::now() >= next_beat {
                let first_open = open.iter().position(|&o| o);
                if let (Some(i), true) =
                    (first_open, progress.elapsed() > self.settings.file_timeout)
                {
                    return Err(FleetError::Hung {
                        path: work_taken[i].path.clone(),
                        secs: progress.elapsed().as_secs_f64(),
                    });
                }
                let ids: Vec<&str> = work_taken
                    .iter()
                    .zip(&open)
                    .filter(|(_, &o)| o)
                    .map(|(t, _)| t.id.as_str())
                    .collect();
                self.renew(&ids)?;
                next_beat = Instant::now() + beat;
            }
        }
    }

    /// Resets the idle time of entries still in flight (JUSTID: no delivery is counted).
    fn renew(&mut self, ids: &[&str]) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let (files, me) = (self.run.key("files"), self.opts.name.clone());
        self.link.call(|c| {
            redis::cmd("XCLAIM")
                .arg(&files)
                .arg(GROUP)
                .arg(&me)
                .arg(0)
                .arg(ids)
                .arg("JUSTID")
                .query::<Value>(c)
                .map(|_| ())
        })
    }

    fn report(&mut self, t: &Taken, line: &str) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        match v["error"].as_str() {
            Some(e) => {
                self.summary.error += 1;
                (self.log)(&format!("{}: error: {e}", t.path));
            }
            None => {
                self.summary.ok += 1;
                (self.log)(&format!("{}: ok", t.path));
            }
        }
    }
}

enum Msg {
    /// The index of a finished file and its record line.
    Done(usize, String),
    End(std::result::Result<(), PipelineError>),
}

/// The batch stages over `work` on a thread of their own, so the worker can renew claims and
/// notice a hung file while they run (a hung model call cannot be interrupted; the worker
/// stops and the process exit ends it).
fn spawn_stages(
    models: &Models,
    question: Option<String>,
    work: Vec<Entry>,
) -> mpsc::Receiver<Msg> {
    let (tx, rx) = mpsc::channel();
    let models = models.clone();
    std::thread::spawn(move || {
        let opts = RunOptions {
            question,
            sequential: false,
            capacity: work.len().max(1),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut tally = Tally::default();
        let done = tx.clone();
        let mut write = |e: &Entry, line: &str| {
            let i = work
                .iter()
                .position(|w| std::ptr::eq(w, e))
                .unwrap_or(usize::MAX);
            done.send(Msg::Done(i, line.to_string()))
                .map_err(|_| PipelineError::Invalid("the worker stopped".to_string()))
        };
        let r = process(
            &models, &work, &opts, &stop, false, &Quiet, &mut tally, &mut write,
        );
        let _ = tx.send(Msg::End(r.map(|_| ())));
    });
    rx
}

struct Quiet;

impl Observer for Quiet {
    fn file(&self, _: &str, _: &str, _: &StageCounts) {}
    fn tick(&self, _: &StageCounts) {}
}

fn ids(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default()
}

/// The entry's fields, or None when they are gone.
fn taken(e: &StreamId) -> Option<Taken> {
    let bytes =
        |k: &str| -> Option<Vec<u8>> { e.map.get(k).and_then(|v| from_redis_value(v).ok()) };
    let text = |k: &str| bytes(k).and_then(|b| String::from_utf8(b).ok());
    Some(Taken {
        id: e.id.clone(),
        path: text("path")?,
        open: bytes_path(&bytes("open")?),
        key: text("key")?,
        member: text("member")?,
    })
}

/// The file as it is now (size, mtime, kind), recorded under the path enqueue walked.
fn inspect(t: &Taken) -> Entry {
    let mut e = walk::inspect(&t.open);
    e.display = t.path.clone();
    e
}

/// A worker opens the file by its absolute path; the record names it as enqueue walked it,
/// as `percept batch` would: the transcript's `source`, and for a name that is not UTF-8 the
/// exact bytes in `path_b64`, and its error message.
fn as_walked(t: &Taken, line: &str) -> String {
    let b64 = t.key.strip_prefix("b64:");
    let open = t.open.to_string_lossy();
    if b64.is_none() && !line.contains("\"transcript\"") && !line.contains(open.as_ref()) {
        return line.to_string();
    }
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(line) else {
        return line.to_string();
    };
    if let Some(b) = b64 {
        v["path_b64"] = b.into();
    }
    if let Some(source) = v.pointer_mut("/results/transcript/source") {
        *source = t.path.clone().into();
    }
    if let Some(e) = v["error"].as_str() {
        v["error"] = e.replace(open.as_ref(), &t.path).into();
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(key: &str) -> Taken {
        Taken {
            id: "1-0".to_string(),
            path: "media/a.wav".to_string(),
            open: "/srv/shared/media/a.wav".into(),
            key: key.to_string(),
            member: String::new(),
        }
    }

    #[test]
    fn records_name_the_walked_path_not_the_opened_one() {
        let line = r#"{"path":"media/a.wav","status":"error","error":"decode: /srv/shared/media/a.wav: cut","results":{"transcript":{"source":"/srv/shared/media/a.wav","text":"hi"}}}"#;
        let v: serde_json::Value =
            serde_json::from_str(&as_walked(&taken("media/a.wav"), line)).unwrap();
        assert_eq!(v["error"], "decode: media/a.wav: cut");
        assert_eq!(v["results"]["transcript"]["source"], "media/a.wav");
        assert!(v.get("path_b64").is_none());
        let ok = r#"{"path":"media/a.png","status":"ok","error":null,"results":{"labels":[]}}"#;
        assert_eq!(
            as_walked(&taken("media/a.png"), ok),
            ok,
            "untouched: nothing to rename"
        );
        let b64 = as_walked(&taken("b64:eP8="), ok);
        let v: serde_json::Value = serde_json::from_str(&b64).unwrap();
        assert_eq!(v["path_b64"], "eP8=");
        assert!(v["results"].get("transcript").is_none(), "no key added");
    }
}
