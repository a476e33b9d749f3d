use serde::Serialize;
use std::time::Duration;

/// What one stage did during a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StageMetrics {
    pub stage: String,
    /// Items that reached `process` (errors passing through are not counted).
    pub items: u64,
    /// Items for which `process` failed or panicked.
    pub errors: u64,
    /// Time spent inside `process`.
    #[serde(serialize_with = "secs")]
    pub busy: Duration,
    /// Sum over items of the time between being sent to this stage and being taken.
    #[serde(serialize_with = "secs")]
    pub queue_wait: Duration,
    /// Highest input-queue depth seen by this stage; never above `capacity`.
    pub queue_high_water: usize,
    pub capacity: usize,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}
