//! The hand-off from a capture callback to the front end: a bounded queue of sample chunks.
//!
//! The callback side never blocks: when the queue is full the chunk is counted as lost, and the
//! next chunk that gets through carries that count, so the front end knows exactly where the
//! hole is: it throws away the utterance that lost audio (whole) and keeps stream time.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Mono samples at the source's rate.
pub type Chunk = Vec<f32>;

/// Samples lost just before a chunk, and the chunk.
pub(crate) type Tagged = (u64, Chunk);

/// The producing end (cheap to clone into a callback).
#[derive(Clone)]
pub struct CaptureTx {
    tx: Sender<Tagged>,
    lost: Arc<AtomicU64>,
}

/// The consuming end, read by the front end.
pub struct CaptureRx {
    pub(crate) rx: Receiver<Tagged>,
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
        CaptureRx { rx },
    )
}

impl CaptureTx {
    /// Never blocks. Returns false when the chunk was lost (queue full) or nobody listens.
    pub fn push(&self, chunk: Chunk) -> bool {
        let n = chunk.len() as u64;
        let before = self.lost.swap(0, Ordering::Relaxed);
        match self.tx.try_send((before, chunk)) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.lost.fetch_add(before + n, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Waits for room: for sources that are not real time (a file read as fast as possible).
    pub fn push_blocking(&self, chunk: Chunk) -> bool {
        let before = self.lost.swap(0, Ordering::Relaxed);
        self.tx.send((before, chunk)).is_ok()
    }
}
