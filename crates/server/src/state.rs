//! What every handler shares: settings, metrics, the stage workers once loaded, the work
//! queue's permits and the cancel flags of requests in flight.

use crate::chat_input::MediaPolicy;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::workers::{Permit, Workers};
use crate::Config;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::Semaphore;

pub struct AppState {
    pub config: Config,
    pub policy: MediaPolicy,
    pub metrics: Arc<Metrics>,
    pub workers: OnceLock<Workers>,
    permits: Arc<Semaphore>,
    pub stopping: AtomicBool,
    inflight: Mutex<HashMap<u64, Arc<AtomicBool>>>,
    next_id: AtomicU64,
}

impl AppState {
    pub fn new(config: Config, policy: MediaPolicy, metrics: Arc<Metrics>) -> Self {
        metrics.queue_capacity.set(config.queue as i64);
        AppState {
            permits: Arc::new(Semaphore::new(config.queue)),
            config,
            policy,
            metrics,
            workers: OnceLock::new(),
            stopping: AtomicBool::new(false),
            inflight: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// The stage workers, or 503 while models load or the server stops.
    pub fn workers(&self) -> Result<&Workers, ApiError> {
        if self.stopping.load(Ordering::SeqCst) {
            return Err(ApiError::unavailable("the server is shutting down"));
        }
        self.workers
            .get()
            .ok_or_else(|| ApiError::unavailable("models are still loading; retry shortly"))
    }

    /// A place in the bounded work queue, or 429 when it is full (never an unbounded wait).
    pub fn admit(&self) -> Result<Permit, ApiError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => Ok(Arc::new(p)),
            Err(_) => {
                self.metrics.rejected.inc();
                Err(ApiError::busy(self.config.queue))
            }
        }
    }

    pub fn queue_depth(&self) -> usize {
        self.config.queue - self.permits.available_permits()
    }

    /// A cancel flag registered for shutdown; dropping the guard cancels the work (a client
    /// that went away) and unregisters it.
    pub fn track(self: &Arc<Self>) -> CancelGuard {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let flag = Arc::new(AtomicBool::new(false));
        if let Ok(mut m) = self.inflight.lock() {
            m.insert(id, flag.clone());
        }
        CancelGuard {
            id,
            flag,
            state: self.clone(),
        }
    }

    /// Stops every generation in flight (the grace period is over).
    pub fn cancel_all(&self) {
        if let Ok(m) = self.inflight.lock() {
            for f in m.values() {
                f.store(true, Ordering::SeqCst);
            }
        }
    }

    pub fn in_flight(&self) -> usize {
        self.inflight.lock().map(|m| m.len()).unwrap_or(0)
    }
}

pub struct CancelGuard {
    id: u64,
    pub flag: Arc<AtomicBool>,
    state: Arc<AppState>,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(mut m) = self.state.inflight.lock() {
            m.remove(&self.id);
        }
    }
}
