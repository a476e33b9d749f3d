//! percept-server: the pipeline as a long-running, OpenAI-compatible HTTP service.
//!
//! Models load once, by the pipeline's one loader; every request flows through the
//! pipeline's `Service`, the same stage threads `percept ask` runs on (speech, vision, llm on
//! bounded crossbeam channels). Async handlers never run model code: they hand a job to the
//! service from a blocking thread and await its reply, so one request's transcription or
//! image encoding overlaps another's LLM decoding.
//!
//! Why axum + tokio: both are maintained by the tokio project, are the most used Rust HTTP
//! stack, and give us what a hand-written server would get wrong: HTTP/1.1 keep-alive,
//! request body limits, multipart parsing, server-sent events, and graceful shutdown that
//! stops accepting and then waits for in-flight responses.
//!
//! Admission: a request takes one of `--queue` permits before any stage work (429 with
//! `Retry-After` when none is free) and its jobs hold the permit until their stage is done,
//! so memory stays bounded and the stage channels never block a handler.

mod access;
mod app;
mod audio;
mod chat;
mod chat_input;
mod conn;
mod embeddings;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod json;
mod metrics;
mod speech;
mod state;
mod stream;
mod vision;
mod workers;

pub use error::{ApiError, ServerError};

use chat_input::MediaPolicy;
use percept_llm::GenParams;
use state::AppState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Server options (the `percept serve` flags).
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// Bearer token required on every /v1 route.
    pub api_key: Option<String>,
    /// Directories `file://` image URLs may point into.
    pub allow_dirs: Vec<PathBuf>,
    /// Requests admitted to the stages at once (queued or running).
    pub queue: usize,
    pub max_body_bytes: usize,
    pub timeout: Duration,
    /// After Ctrl-C/SIGTERM: how long in-flight requests may finish before they are cancelled.
    pub grace: Duration,
    /// Sampling and length used where a request does not say.
    pub defaults: GenParams,
    /// System message used when a request has none.
    pub system: Option<String>,
    /// Whisper decoding for spoken questions (the pipeline's, as `ask` uses it), with the
    /// server's audio limits (`AudioLimits::SERVER` unless `--max-audio-s`).
    pub speech: percept_whisper::Options,
    /// Bounds on a video in chat (`VideoLimits::SERVER` unless `--max-video-s` or
    /// `--max-audio-s`).
    pub video_limits: percept_pipeline::video::VideoLimits,
    /// How long a client may take to send a request's headers (then the connection closes).
    pub header_timeout: Duration,
    /// How long a client may take to send a request's body (then 408).
    pub body_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Host names accepted in the `Host` header besides IP literals and `localhost`
    /// (a defence against DNS rebinding).
    pub allow_hosts: Vec<String>,
    /// Web origins allowed to call the API from a browser; none by default.
    pub cors_origins: Vec<String>,
}

/// What the caller may want to tell the user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Models are loaded and the socket is bound.
    Listening(SocketAddr),
    /// A signal arrived; no new connections are taken.
    Stopping { in_flight: usize },
    /// The grace period ended with requests still running; they were cancelled.
    Cancelled { in_flight: usize },
}

/// Loads the stages (`percept_pipeline::load_stages`); the LLM is required, Whisper and
/// CLIP serve their endpoints when present.
pub type Loader = Box<dyn FnOnce() -> Result<percept_pipeline::Stages, String> + Send>;

/// Binds, loads the models (`/health` answers 503 meanwhile), serves until Ctrl-C or
/// SIGTERM, then shuts down gracefully.
pub fn run(
    config: Config,
    load: Loader,
    mut on_event: impl FnMut(Event),
) -> Result<(), ServerError> {
    let allow_dirs = config
        .allow_dirs
        .iter()
        .map(|d| {
            d.canonicalize().map_err(|source| ServerError::AllowDir {
                dir: d.display().to_string(),
                source,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy = MediaPolicy {
        allow_dirs,
        max_bytes: config.max_body_bytes,
    };
    let metrics = Arc::new(metrics::Metrics::new()?);
    let queue = config.queue.max(1);
    let grace = config.grace;
    let addr = config.addr;
    let st = Arc::new(AppState::new(
        Config { queue, ..config },
        policy,
        metrics.clone(),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut signalled = stop_rx.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = stop_tx.send(true);
        });
        let app = app::router(st.clone());
        let mut server = tokio::spawn(conn::serve(listener, app, st.clone(), stop_rx.clone()));

        let loading = tokio::task::spawn_blocking(load);
        let models = tokio::select! {
            r = loading => r.map_err(|e| ServerError::Load(format!("the loader panicked: {e}")))?
                .map_err(ServerError::Load)?,
            _ = signalled.wait_for(|s| *s) => return Ok(()),
        };
        let workers =
            workers::Workers::start(models, queue, metrics.clone()).map_err(ServerError::Load)?;
        let _ = st.workers.set(workers);
        metrics.ready.set(1);
        on_event(Event::Listening(local));

        // Biased: a signal also ends the server task, and the stop should be reported.
        tokio::select! {
            biased;
            _ = signalled.wait_for(|s| *s) => {}
            r = &mut server => return finish(r),
        }
        st.stopping.store(true, Ordering::SeqCst);
        metrics.ready.set(0);
        on_event(Event::Stopping {
            in_flight: st.in_flight(),
        });
        if let Ok(r) = tokio::time::timeout(grace, &mut server).await {
            return finish(r);
        }
        on_event(Event::Cancelled {
            in_flight: st.in_flight(),
        });
        st.cancel_all();
        // Cancelled generations end within a token; do not wait forever on a stuck client.
        match tokio::time::timeout(Duration::from_secs(5), &mut server).await {
            Ok(r) => finish(r),
            Err(_) => Ok(()),
        }
    });
    // A model load still running (stopped while loading) must not hold the exit.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

fn finish(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> Result<(), ServerError> {
    match r {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(ServerError::Serve(e)),
        Err(e) => Err(ServerError::Serve(std::io::Error::other(e.to_string()))),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
