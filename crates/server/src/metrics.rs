//! Prometheus metrics for `GET /metrics`.

use prometheus::{
    Encoder, Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::time::Duration;

/// Every metric the server exports, registered once at start.
pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub errors: IntCounterVec,
    pub rejected: IntCounter,
    pub queue_depth: IntGauge,
    pub queue_capacity: IntGauge,
    pub stage_seconds: HistogramVec,
    pub stage_wait_seconds: HistogramVec,
    pub tokens: IntCounterVec,
    pub decode_seconds: prometheus::Counter,
    pub tokens_per_second: Gauge,
    pub finish: IntCounterVec,
    pub ready: IntGauge,
    pub connections: IntGauge,
    pub connections_capacity: IntGauge,
    pub connections_per_ip_capacity: IntGauge,
    pub connections_rejected: IntCounter,
}

const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "percept_http_requests_total",
                "HTTP requests by route and status",
            ),
            &["route", "status"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "percept_errors_total",
                "Error responses (4xx and 5xx) by status",
            ),
            &["status"],
        )?;
        let rejected = IntCounter::new(
            "percept_queue_rejected_total",
            "Requests refused with 429 because the work queue was full",
        )?;
        let queue_depth = IntGauge::new(
            "percept_queue_depth",
            "Requests admitted to the stages (queued or running)",
        )?;
        let queue_capacity = IntGauge::new("percept_queue_capacity", "Work queue size (--queue)")?;
        let stage_seconds = HistogramVec::new(
            HistogramOpts::new("percept_stage_seconds", "Time a stage spent on one job")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let stage_wait_seconds = HistogramVec::new(
            HistogramOpts::new(
                "percept_stage_wait_seconds",
                "Time a job waited in a stage's input queue",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let tokens = IntCounterVec::new(
            Opts::new(
                "percept_llm_tokens_total",
                "LLM tokens by kind (prompt, completion)",
            ),
            &["kind"],
        )?;
        let decode_seconds =
            prometheus::Counter::new("percept_llm_decode_seconds_total", "Time spent decoding")?;
        let tokens_per_second = Gauge::new(
            "percept_llm_tokens_per_second",
            "Decode speed of the last finished generation",
        )?;
        let finish = IntCounterVec::new(
            Opts::new(
                "percept_llm_generations_total",
                "Finished generations by finish reason (stop, length, cancelled)",
            ),
            &["reason"],
        )?;
        let ready = IntGauge::new("percept_ready", "1 once the models are loaded")?;
        let connections = IntGauge::new("percept_connections", "Open client connections")?;
        let connections_capacity = IntGauge::new(
            "percept_connections_capacity",
            "Open connections allowed in total (--max-connections)",
        )?;
        let connections_per_ip_capacity = IntGauge::new(
            "percept_connections_per_ip_capacity",
            "Open connections allowed per client address (--max-connections-per-ip)",
        )?;
        let connections_rejected = IntCounter::new(
            "percept_connections_rejected_total",
            "Connections closed at once because a connection cap was reached",
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(rejected.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(queue_capacity.clone()))?;
        registry.register(Box::new(stage_seconds.clone()))?;
        registry.register(Box::new(stage_wait_seconds.clone()))?;
        registry.register(Box::new(tokens.clone()))?;
        registry.register(Box::new(decode_seconds.clone()))?;
        registry.register(Box::new(tokens_per_second.clone()))?;
        registry.register(Box::new(finish.clone()))?;
        registry.register(Box::new(ready.clone()))?;
        registry.register(Box::new(connections.clone()))?;
        registry.register(Box::new(connections_capacity.clone()))?;
        registry.register(Box::new(connections_per_ip_capacity.clone()))?;
        registry.register(Box::new(connections_rejected.clone()))?;
        Ok(Metrics {
            registry,
            requests,
            errors,
            rejected,
            queue_depth,
            queue_capacity,
            stage_seconds,
            stage_wait_seconds,
            tokens,
            decode_seconds,
            tokens_per_second,
            finish,
            ready,
            connections,
            connections_capacity,
            connections_per_ip_capacity,
            connections_rejected,
        })
    }

    /// One job done by `stage`: how long it waited and how long it ran.
    pub fn stage(&self, stage: &str, waited: Duration, busy: Duration) {
        self.stage_wait_seconds
            .with_label_values(&[stage])
            .observe(waited.as_secs_f64());
        self.stage_seconds
            .with_label_values(&[stage])
            .observe(busy.as_secs_f64());
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}
