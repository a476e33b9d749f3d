//! percept-fleet: `percept batch` beyond one machine, on Redis Streams.
//!
//! One Redis holds a run (keys `percept:RUN:*`):
//!
//! - `files`: a stream with one entry per file to process, read by the consumer group
//!   `workers`; an entry is pending (in flight) from its delivery until its worker acks it;
//! - `queued`: the files enqueued and not yet recorded (so a second enqueue adds nothing twice);
//! - `done`: a hash from each file's resume key to its record, the same JSON line
//!   `percept batch` writes; recording a file, leaving `queued` and acking its entry are one
//!   MULTI/EXEC, so a file is recorded once however often it ran;
//! - `dead`: the files dead-lettered after `max_attempts` deliveries (their record, an error,
//!   is in `done` as well);
//! - `meta`: the run's settings, written by enqueue and read by every worker.
//!
//! Workers run files through `percept-pipeline`'s batch stages. An entry whose worker died
//! (kill -9, a lost machine) stays pending; after `claim_idle` without a heartbeat another
//! worker claims it (XAUTOCLAIM). Redis counts deliveries; an entry delivered more than
//! `max_attempts` times is dead-lettered instead of run, so a file that kills or hangs its
//! worker every time stops after N attempts and the rest of the queue goes on. Every Redis
//! call reconnects with exponential backoff, so workers outlive a Redis restart.

mod enqueue;
mod link;
mod report;
mod worker;

pub use enqueue::{enqueue, EnqueueOptions, Enqueued};
pub use report::{collect, status, Collected, Consumer, Dead, Status};
pub use worker::{work, WorkSummary, WorkerOptions};

use std::collections::HashMap;
use std::time::Duration;

/// How long the one-shot commands (enqueue, status, collect) wait for Redis before failing;
/// workers wait for ever.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// The consumer group every worker of a run reads through.
pub(crate) const GROUP: &str = "workers";

/// Where a run lives: a Redis URL and the run's name.
#[derive(Debug, Clone)]
pub struct Run {
    pub url: String,
    pub name: String,
}

impl Run {
    pub fn new(url: impl Into<String>, name: impl Into<String>) -> Run {
        Run {
            url: url.into(),
            name: name.into(),
        }
    }

    pub(crate) fn key(&self, part: &str) -> String {
        format!("percept:{}:{part}", self.name)
    }
}

/// The run-wide settings every worker follows (`meta`).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub question: Option<String>,
    /// Deliveries of one file before it is dead-lettered.
    pub max_attempts: u64,
    /// How long an entry may go without its worker's heartbeat before another takes it.
    pub claim_idle: Duration,
    /// A worker on which no file finished for this long stops (the file is hung).
    pub file_timeout: Duration,
}

impl Settings {
    /// The settings from the command line's numbers (seconds); a negative or endless time is
    /// an error naming its flag.
    pub fn from_secs(
        question: Option<String>,
        max_attempts: u64,
        claim_idle_s: f64,
        file_timeout_s: f64,
    ) -> Result<Settings> {
        let secs = |flag: &str, s: f64| {
            Duration::try_from_secs_f64(s)
                .map_err(|e| FleetError::Invalid(format!("--{flag} {s}: {e}")))
        };
        if max_attempts == 0 {
            return Err(FleetError::Invalid(
                "--max-attempts must be at least 1".to_string(),
            ));
        }
        Ok(Settings {
            question,
            max_attempts,
            claim_idle: secs("claim-idle-s", claim_idle_s)?,
            file_timeout: secs("file-timeout-s", file_timeout_s)?,
        })
    }

    pub(crate) fn to_fields(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![
            ("max_attempts", self.max_attempts.to_string()),
            ("claim_idle_ms", self.claim_idle.as_millis().to_string()),
            ("file_timeout_ms", self.file_timeout.as_millis().to_string()),
        ];
        if let Some(q) = &self.question {
            f.push(("question", q.clone()));
        }
        f
    }

    pub(crate) fn from_fields(run: &Run, f: &HashMap<String, String>) -> Result<Settings> {
        let num = |k: &str| -> Result<u64> {
            f.get(k).and_then(|v| v.parse().ok()).ok_or_else(|| {
                FleetError::Invalid(format!(
                    "run `{}`: its settings lack {k}; enqueue again",
                    run.name
                ))
            })
        };
        Ok(Settings {
            question: f.get("question").cloned(),
            max_attempts: num("max_attempts")?,
            claim_idle: Duration::from_millis(num("claim_idle_ms")?),
            file_timeout: Duration::from_millis(num("file_timeout_ms")?),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("redis at {url}: {source}")]
    Redis {
        url: String,
        #[source]
        source: redis::RedisError,
    },
    #[error("redis at {url} did not answer for {secs:.0} s ({last})")]
    Unreachable {
        url: String,
        secs: f64,
        last: String,
    },
    #[error("run `{0}` has nothing enqueued (percept fleet --enqueue DIR first)")]
    NoRun(String),
    /// No file finished within the run's file timeout: the worker must stop (its model threads
    /// cannot be interrupted); the file's entry stays pending and is retried or dead-lettered.
    #[error("{path}: no file finished in {secs:.0} s (the run's --file-timeout-s); stopping this worker so the file is retried elsewhere or dead-lettered")]
    Hung { path: String, secs: f64 },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Pipeline(#[from] percept_pipeline::PipelineError),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T> = std::result::Result<T, FleetError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_bad_numbers_name_their_flag() {
        let s = Settings::from_secs(Some("what?".to_string()), 3, 1.5, 600.0).unwrap();
        let fields: HashMap<String, String> = s
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let run = Run::new("redis://127.0.0.1:1", "t");
        assert_eq!(Settings::from_fields(&run, &fields).unwrap(), s);
        let e = Settings::from_secs(None, 3, -1.0, 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--claim-idle-s -1"), "{e}");
        let e = Settings::from_secs(None, 0, 1.0, 1.0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--max-attempts"), "{e}");
        assert_eq!(run.key("files"), "percept:t:files");
    }
}
