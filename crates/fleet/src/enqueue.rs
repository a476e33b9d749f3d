//! Enqueue: walk a folder as `percept batch` does and add one stream entry per file not yet
//! recorded (same path, size and mtime) and not already queued.

use crate::link::Link;
use crate::{FleetError, Result, Run, Settings, GROUP};
use percept_pipeline::batch::folder::globs;
use percept_pipeline::batch::journal::Done;
use percept_pipeline::batch::record::{path_key, StoredKey};
use percept_pipeline::batch::walk::{self, Entry};
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

/// Adds a file once: the `queued` set decides, so a repeated enqueue (or a retried call)
/// adds nothing twice. KEYS: queued, files. ARGV: member, path, open, key.
const ADD: &str = r"
if redis.call('SADD', KEYS[1], ARGV[1]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'path', ARGV[2], 'open', ARGV[3], 'key', ARGV[4], 'member', ARGV[1])
  return 1
end
return 0";

/// Files per round trip.
const CHUNK: usize = 256;

#[derive(Debug, Clone)]
pub struct EnqueueOptions {
    /// The folder on the storage every worker shares, at the same path on every machine.
    pub dir: PathBuf,
    pub exclude: Vec<String>,
    /// Files whose record is an error are queued again.
    pub retry_errors: bool,
    pub settings: Settings,
}

impl EnqueueOptions {
    pub fn new(
        dir: PathBuf,
        exclude: Vec<String>,
        retry_errors: bool,
        settings: Settings,
    ) -> EnqueueOptions {
        EnqueueOptions {
            dir,
            exclude,
            retry_errors,
            settings,
        }
    }
}

/// What an enqueue did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Enqueued {
    pub added: u64,
    /// Already recorded with the same size and mtime.
    pub recorded: u64,
    /// Already on the queue.
    pub queued: u64,
    /// Lines for the person (symlink loops, files that are not regular).
    pub notes: Vec<String>,
}

/// Walks `opts.dir` and queues its files for `run`'s workers; waits up to `patience` for Redis.
pub fn enqueue(run: &Run, opts: &EnqueueOptions, patience: Duration) -> Result<Enqueued> {
    let walked = walk::walk(&opts.dir, &globs(&opts.exclude)?, None)?;
    let mut link = Link::open(&run.url, Some(patience))?;
    let (files, queued, done, meta) = (
        run.key("files"),
        run.key("queued"),
        run.key("done"),
        run.key("meta"),
    );
    let fields = opts.settings.to_fields();
    link.call(|c| {
        redis::cmd("DEL").arg(&meta).query::<()>(c)?;
        redis::cmd("HSET").arg(&meta).arg(&fields).query::<()>(c)?;
        match redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&files)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query::<()>(c)
        {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other,
        }
    })?;
    let recorded: HashMap<String, String> =
        link.call(|c| redis::cmd("HGETALL").arg(&done).query(c))?;
    let keys: Vec<StoredKey> = recorded
        .values()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect();
    let done_set = Done::from_records(&keys, opts.retry_errors);
    let mut out = Enqueued {
        notes: walked.notes,
        ..Enqueued::default()
    };
    let mut todo = Vec::new();
    for e in &walked.entries {
        let key = path_key(&e.path, &e.display);
        if done_set.contains(&key, e.size, e.mtime) {
            out.recorded += 1;
        } else {
            todo.push(Item::new(e, key)?);
        }
    }
    for chunk in todo.chunks(CHUNK) {
        let added: Vec<u64> = link.call(|c| {
            let mut pipe = redis::pipe();
            for it in chunk {
                pipe.cmd("EVAL")
                    .arg(ADD)
                    .arg(2)
                    .arg(&queued)
                    .arg(&files)
                    .arg(&it.member)
                    .arg(&it.path)
                    .arg(&it.open)
                    .arg(&it.key);
            }
            pipe.query(c)
        })?;
        let n = added.iter().filter(|&&a| a == 1).count() as u64;
        out.added += n;
        out.queued += chunk.len() as u64 - n;
    }
    Ok(out)
}

struct Item {
    member: String,
    path: String,
    open: Vec<u8>,
    key: String,
}

impl Item {
    fn new(e: &Entry, key: String) -> Result<Item> {
        let abs = std::path::absolute(&e.path).map_err(|source| FleetError::Io {
            what: "resolving",
            path: e.display.clone(),
            source,
        })?;
        Ok(Item {
            member: format!("{key}\n{}\n{}", e.size, e.mtime),
            path: e.display.clone(),
            open: path_bytes(&abs),
            key,
        })
    }
}

#[cfg(unix)]
fn path_bytes(p: &std::path::Path) -> Vec<u8> {
    std::os::unix::ffi::OsStrExt::as_bytes(p.as_os_str()).to_vec()
}

#[cfg(not(unix))]
fn path_bytes(p: &std::path::Path) -> Vec<u8> {
    p.to_string_lossy().into_owned().into_bytes()
}

#[cfg(unix)]
pub(crate) fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(b))
}

#[cfg(not(unix))]
pub(crate) fn bytes_path(b: &[u8]) -> PathBuf {
    PathBuf::from(String::from_utf8_lossy(b).into_owned())
}

impl std::fmt::Display for Enqueued {
    /// The notes, one a line, then the counts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for n in &self.notes {
            writeln!(f, "percept: {n}")?;
        }
        write!(
            f,
            "{} queued, {} already recorded, {} already queued",
            self.added, self.recorded, self.queued
        )
    }
}
