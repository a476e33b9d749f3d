//! The hand-off from a capture callback to the front end: a bounded queue of sample chunks.
//!
//! The callback side never blocks: when the queue is full the chunk is counted as lost and the
//! front end later throws away the utterance that lost audio (whole), keeping stream time.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Mono samples at the source's rate.
pub type Chunk = Vec<f32>;

/// The producing end (cheap to clone into a callback).
#[derive(Clone)]
pub struct CaptureTx {
    tx: Sender<Chunk>,
    lost: Arc<AtomicU64>,
}

/// The consuming end, read by the front end.
pub struct CaptureRx {
    pub(crate) rx: Receiver<Chunk>,
    lost: Arc<AtomicU64>,
}

/// A capture queue holding up to `chunks` chunks.
pub fn capture_queue(chunks: usize) -> (CaptureTx, CaptureRx) {
    let (tx, rx) = bounded(chunks.max(1));
    let lost = Arc::new(AtomicU64::new(0));
    (
        CaptureTx {
            tx,
            lost: lost.clone(),
        },
        CaptureRx { rx, lost },
    )
}

impl CaptureTx {
    /// Never blocks. Returns false when the chunk was lost (queue full) or nobody listens.
    pub fn push(&self, chunk: Chunk) -> bool {
        let n = chunk.len() as u64;
        match self.tx.try_send(chunk) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lost.fetch_add(n, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits for room: for sources that are not real time (a file read as fast as possible).
    pub fn push_blocking(&self, chunk: Chunk) -> bool {
        self.tx.send(chunk).is_ok()
    }
}

impl CaptureRx {
    /// Samples lost since the last call.
    pub fn take_lost(&self) -> u64 {
        self.lost.swap(0, Ordering::Relaxed)
    }
}
