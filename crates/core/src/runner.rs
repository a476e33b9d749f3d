//! One thread per stage, bounded channels between them.
//!
//! Invariants:
//! - every accepted item leaves the last stage exactly once, as `Ok` or as an [`ItemError`];
//! - a stage that fails or panics on one item reports it for that item and keeps going;
//! - a full queue blocks the sender (backpressure), so memory stays bounded by the capacities.

use crate::{ItemError, Shutdown, Stage, StageMetrics};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

pub type ItemId = u64;

/// One item in flight: its id and either its payload or the error that stopped it.
#[derive(Debug)]
pub struct Envelope<T> {
    pub id: ItemId,
    pub result: Result<T, ItemError>,
    sent_at: Instant,
}

impl<T> Envelope<T> {
    fn new(id: ItemId, result: Result<T, ItemError>) -> Self {
        Envelope {
            id,
            result,
            sent_at: Instant::now(),
        }
    }
}

/// The feeding end of a pipeline. Dropping it is end-of-input.
pub struct Input<T> {
    tx: Sender<Envelope<T>>,
    shutdown: Shutdown,
    next_id: ItemId,
}

/// Why [`Input::send`] did not take an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the pipeline is shutting down")]
    ShuttingDown,
    #[error("the pipeline's first stage has stopped")]
    Disconnected,
}

impl<T> Input<T> {
    /// Sends a payload with the next sequential id; blocks while the first queue is full.
    pub fn send(&mut self, payload: T) -> Result<ItemId, SendError> {
        let id = self.next_id;
        self.send_result(id, Ok(payload))?;
        self.next_id += 1;
        Ok(id)
    }

    /// Sends with a caller-chosen id (e.g. a line number in a batch report).
    pub fn send_with_id(&mut self, id: ItemId, payload: T) -> Result<(), SendError> {
        self.send_result(id, Ok(payload))
    }

    /// Records that an item failed before the pipeline (e.g. it could not be decoded),
    /// so its error comes out in order with the others.
    pub fn send_error(&mut self, id: ItemId, error: ItemError) -> Result<(), SendError> {
        self.send_result(id, Err(error))
    }

    fn send_result(&mut self, id: ItemId, result: Result<T, ItemError>) -> Result<(), SendError> {
        if self.shutdown.is_triggered() {
            return Err(SendError::ShuttingDown);
        }
        self.tx
            .send(Envelope::new(id, result))
            .map_err(|_| SendError::Disconnected)
    }
}

/// What [`Pipeline::join`] returns.
#[derive(Debug, Clone, Default)]
pub struct PipelineReport {
    pub stages: Vec<StageMetrics>,
}

/// Owns the stage threads of one run.
pub struct Pipeline {
    capacity: usize,
    shutdown: Shutdown,
    threads: Vec<JoinHandle<()>>,
    metrics: Vec<Arc<Mutex<StageMetrics>>>,
}

impl Pipeline {
    /// `capacity` bounds every queue (at least 1).
    pub fn new(capacity: usize) -> Self {
        Pipeline {
            capacity: capacity.max(1),
            shutdown: Shutdown::new(),
            threads: Vec::new(),
            metrics: Vec::new(),
        }
    }

    /// The flag that stops [`Input`] from accepting items (wire it to Ctrl-C).
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// A new input queue: feed the sender, hand the receiver to [`Pipeline::add`].
    pub fn input<T>(&self) -> (Input<T>, Receiver<Envelope<T>>) {
        let (tx, rx) = bounded(self.capacity);
        let input = Input {
            tx,
            shutdown: self.shutdown.clone(),
            next_id: 0,
        };
        (input, rx)
    }

    /// Runs `stage` on its own thread reading `rx`; returns its output queue.
    pub fn add<S: Stage>(
        &mut self,
        mut stage: S,
        rx: Receiver<Envelope<S::Input>>,
    ) -> Receiver<Envelope<S::Output>> {
        let (tx, out) = bounded(self.capacity);
        let metrics = Arc::new(Mutex::new(StageMetrics {
            stage: stage.name().to_string(),
            capacity: self.capacity,
            ..StageMetrics::default()
        }));
        self.metrics.push(metrics.clone());
        let name = stage.name().to_string();
        let handle = std::thread::Builder::new()
            .name(format!("stage-{name}"))
            .spawn(move || run_stage(&mut stage, rx, tx, &metrics))
            .unwrap_or_else(|e| panic!("cannot spawn a thread for stage {name}: {e}"));
        self.threads.push(handle);
        out
    }

    /// Waits for every stage to finish (after end-of-input) and returns their metrics.
    pub fn join(self) -> PipelineReport {
        for t in self.threads {
            // run_stage catches panics from `process`; a panic here is a runner bug.
            let _ = t.join();
        }
        let stages = self
            .metrics
            .iter()
            .map(|m| lock(m).clone())
            .collect::<Vec<_>>();
        PipelineReport { stages }
    }
}

fn lock(m: &Mutex<StageMetrics>) -> std::sync::MutexGuard<'_, StageMetrics> {
    m.lock().unwrap_or_else(|poison| poison.into_inner())
}

fn run_stage<S: Stage>(
    stage: &mut S,
    rx: Receiver<Envelope<S::Input>>,
    tx: Sender<Envelope<S::Output>>,
    metrics: &Mutex<StageMetrics>,
) {
    loop {
        // Sampled before and after taking an item: both are real queue depths (<= capacity).
        let before = rx.len();
        let Ok(env) = rx.recv() else { break };
        let depth = before.max(rx.len());
        let waited = env.sent_at.elapsed();
        let result = match env.result {
            Err(e) => Err(e),
            Ok(input) => {
                let started = Instant::now();
                let outcome = catch_unwind(AssertUnwindSafe(|| stage.process(input)));
                let busy = started.elapsed();
                let result = match outcome {
                    Ok(Ok(out)) => Ok(out),
                    Ok(Err(e)) => Err(e.0),
                    Err(panic) => Err(format!("panicked: {}", panic_message(&*panic))),
                };
                let mut m = lock(metrics);
                m.items += 1;
                m.busy += busy;
                m.errors += u64::from(result.is_err());
                result.map_err(|message| ItemError {
                    stage: stage.name().to_string(),
                    message,
                })
            }
        };
        {
            let mut m = lock(metrics);
            m.queue_wait += waited;
            m.queue_high_water = m.queue_high_water.max(depth);
        }
        if tx.send(Envelope::new(env.id, result)).is_err() {
            // Nobody reads our output any more; the rest of the input has nowhere to go.
            break;
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}
