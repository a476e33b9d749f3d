//! `percept serve`: the pipeline as an OpenAI-compatible HTTP service (percept-server).
//! This file only turns flags into a `percept_server::Config`, loads the models and prints.

use super::common::{show_notices, StageArgs};
use percept_pipeline::{load_stages, Need, PipelineDef, Stages};
use percept_server::{Config, Event};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. Use 0.0.0.0 only behind --api-key.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    #[command(flatten)]
    stages: StageArgs,
    /// Require `Authorization: Bearer KEY` on every /v1 route.
    #[arg(long, env = "PERCEPT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A directory that `file://` image URLs may point into (repeatable); none by default.
    #[arg(long = "allow-dir", value_name = "DIR")]
    allow_dirs: Vec<PathBuf>,
    /// Requests admitted at once (running or waiting); more get 429 with Retry-After.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1024))]
    queue: u32,
    /// Largest request body in MB (413 above it).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_body_mb: u32,
    /// Per-request time limit in seconds (504 past it; generation is cancelled).
    #[arg(long, default_value_t = 120)]
    timeout_s: u64,
    /// After Ctrl-C/SIGTERM, seconds in-flight requests get to finish before being cancelled.
    #[arg(long, default_value_t = 10)]
    grace_s: u64,
    /// Seconds a client gets to send a request's headers, and its body.
    #[arg(long, default_value_t = 10)]
    header_timeout_s: u64,
    #[arg(long, default_value_t = 30)]
    body_timeout_s: u64,
    /// Open connections allowed in total, and per client address (memory for request bodies
    /// is bounded by connections x --max-body-mb).
    #[arg(long, default_value_t = 128)]
    max_connections: usize,
    #[arg(long, default_value_t = 16)]
    max_connections_per_ip: usize,
    /// A host name to accept in the `Host` header besides IP addresses and localhost
    /// (repeatable); other names are refused against DNS rebinding.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// A web origin (e.g. https://app.example) allowed to call the API from a browser
    /// (repeatable); without it, only the server's own page can.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = args.stages.resolve()?;
    let config = Config {
        addr: args.addr,
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        allow_dirs: args.allow_dirs.clone(),
        queue: args.queue as usize,
        max_body_bytes: (args.max_body_mb as usize) << 20,
        timeout: Duration::from_secs(args.timeout_s.max(1)),
        grace: Duration::from_secs(args.grace_s),
        defaults: args.stages.llm.gen_params(&def),
        system: def.system.clone(),
        speech: percept_whisper::Options {
            audio_limits: def.audio_limits(percept_media::AudioLimits::SERVER),
            ..def.whisper_options()
        },
        video_limits: percept_pipeline::video::video_limits(
            &def,
            percept_pipeline::video::VideoLimits::SERVER,
        ),
        header_timeout: Duration::from_secs(args.header_timeout_s.max(1)),
        body_timeout: Duration::from_secs(args.body_timeout_s.max(1)),
        max_connections: args.max_connections,
        max_connections_per_ip: args.max_connections_per_ip,
        allow_hosts: args.allow_hosts.clone(),
        cors_origins: args.cors_origins.clone(),
    };
    let grace = args.grace_s;
    let loader = Box::new(move || load(&def).map_err(|e| format!("{e:#}")));
    percept_server::run(config, loader, |ev| match ev {
        Event::Listening(addr) => eprintln!("percept: listening on http://{addr}"),
        Event::Stopping { in_flight } => eprintln!(
            "percept: stopping: no new connections; {in_flight} request(s) get up to {grace} s"
        ),
        Event::Cancelled { in_flight } => {
            eprintln!("percept: grace period over; cancelling {in_flight} request(s)")
        }
    })?;
    eprintln!("percept: stopped");
    Ok(())
}

/// The same loader as every command: Whisper for the audio endpoints and spoken questions,
/// CLIP when its weights are here, the classifier, and the LLM.
fn load(def: &PipelineDef) -> anyhow::Result<Stages> {
    let stages = load_stages(def, Need::ALL)?;
    show_notices(&stages.notices);
    Ok(stages)
}
