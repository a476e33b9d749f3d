//! `percept serve`: the pipeline as an OpenAI-compatible HTTP service (percept-server).
//! This file only turns flags into a `percept_server::Config`, loads the models and prints.

use super::ask::LlmArgs;
use super::ask_media::DEFAULT_WHISPER;
use super::tag::{cache_dir, load_clip, missing_weights_line};
use anyhow::Context;
use percept_clip::labels::{parse_vocabulary, BUNDLED_LABELS};
use percept_clip::{LabelSet, VisionStage, MODEL_ID as CLIP_ID, TEMPLATES};
use percept_server::{Config, Event, Models};
use percept_whisper::{Device, Whisper};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on; port 0 picks a free port. Use 0.0.0.0 only behind --api-key.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Named pipeline (`default`, `quality`) or a pipeline .toml (default: `default`): models,
    /// sampling and system prompt; explicit flags win.
    #[arg(long)]
    pipeline: Option<String>,
    #[command(flatten)]
    llm: LlmArgs,
    /// Whisper model id or directory for the audio endpoints and spoken questions.
    #[arg(long, default_value = DEFAULT_WHISPER)]
    whisper: String,
    /// CLIP model folder; default: the store's clip-vit-base-patch32 when present.
    #[arg(long, value_name = "DIR")]
    clip_dir: Option<PathBuf>,
    /// CLIP tags per image in chat prompts.
    #[arg(long, default_value_t = 5)]
    tags: usize,
    /// Require `Authorization: Bearer KEY` on every /v1 route.
    #[arg(long, env = "PERCEPT_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// A directory that `file://` image URLs may point into (repeatable); none by default.
    #[arg(long = "allow-dir", value_name = "DIR")]
    allow_dirs: Vec<PathBuf>,
    /// Accept http(s) image URLs in principle; this offline build still refuses to fetch them.
    #[arg(long)]
    allow_remote_images: bool,
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
}

pub fn run(mut args: Args) -> anyhow::Result<()> {
    crate::pipelines::resolve(
        args.pipeline.as_deref(),
        &mut args.llm,
        &mut args.whisper,
        &mut args.clip_dir,
    )?;
    let config = Config {
        addr: args.addr,
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        allow_dirs: args.allow_dirs.clone(),
        allow_remote_images: args.allow_remote_images,
        queue: args.queue as usize,
        max_body_bytes: (args.max_body_mb as usize) << 20,
        timeout: Duration::from_secs(args.timeout_s.max(1)),
        grace: Duration::from_secs(args.grace_s),
        defaults: args.llm.gen_params(),
        system: args.llm.system.clone(),
    };
    let grace = args.grace_s;
    let loader = Box::new(move || load(&args).map_err(|e| format!("{e:#}")));
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

fn load(args: &Args) -> anyhow::Result<Models> {
    let dir = percept_models::locate(&args.whisper).with_context(|| {
        format!(
            "Whisper model {:?} not found (try `percept models fetch {}`)",
            args.whisper, args.whisper
        )
    })?;
    let whisper = Whisper::load(&dir, &Device::Cpu)
        .with_context(|| format!("loading Whisper from {}", dir.display()))?;
    let vision = match load_clip(args.clip_dir.as_deref())? {
        Some(clip) => {
            let labels = parse_vocabulary(BUNDLED_LABELS);
            let (set, _) = LabelSet::load_or_build(&clip, &labels, &TEMPLATES, &cache_dir(None))?;
            let id = args
                .clip_dir
                .as_deref()
                .map(model_name)
                .unwrap_or_else(|| CLIP_ID.to_string());
            Some((
                id,
                VisionStage::new(clip, set, args.tags).without_embedding(),
            ))
        }
        None => {
            eprintln!(
                "percept: semantic tags and /v1/embeddings unavailable: {} (chat uses image facts only)",
                missing_weights_line()
            );
            None
        }
    };
    let llm = args.llm.load()?;
    Ok(Models {
        llm,
        llm_id: model_name(Path::new(&args.llm.model)),
        whisper: Some((model_name(Path::new(&args.whisper)), whisper)),
        vision,
    })
}

/// A store id stays as given; a path becomes its file or folder name (without `.gguf`).
fn model_name(spec: &Path) -> String {
    if spec.components().count() <= 1 && !spec.exists() {
        return spec.display().to_string();
    }
    spec.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.display().to_string())
}
