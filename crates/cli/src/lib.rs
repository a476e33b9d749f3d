//! The `percept` command line. Only this crate prints; libraries return values and errors.

mod cmd;
mod progress;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "percept",
    version,
    about = "Local multimodal pipeline: ask about images and speech, live or in batch",
    long_about = "percept runs Whisper (speech), CLIP (vision) and a text LLM as concurrent \
                  stages on this machine. Models come from the local model store; \
                  `percept models fetch` downloads the default set."
)]
struct Cli {
    /// A directory holding model folders (`<dir>/<model-id>/`), searched before the cache.
    #[arg(long, global = true, env = "PERCEPT_MODEL_DIR")]
    model_dir: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask a question about images and/or a spoken question; the answer streams to stdout.
    Ask(cmd::ask::Args),
    /// Interactive chat with the text LLM.
    Chat(cmd::chat::Args),
    /// Transcribe audio files with Whisper.
    Transcribe(cmd::transcribe::Args),
    /// Zero-shot tags and facts for images (CLIP).
    Tag(cmd::tag::Args),
    /// CLIP embeddings of images.
    Embed(cmd::embed::Args),
    /// Semantic search over a folder of images.
    Search(cmd::search::Args),
    /// Live conversation through the microphone.
    Listen(cmd::listen::Args),
    /// List audio input devices.
    Devices(cmd::devices::Args),
    /// Process a folder of media into a JSONL report.
    Batch(cmd::batch::Args),
    /// `batch` across machines: a Redis queue, workers, status and collection.
    Fleet(cmd::fleet::Args),
    /// OpenAI-compatible HTTP API and web page.
    Serve(cmd::serve::Args),
    /// List, fetch, verify and locate models.
    Models(cmd::models::Args),
    /// Measure a stage's speed.
    Bench(cmd::bench::Args),
    /// Run the demo over the bundled sample media.
    Demo(cmd::demo::Args),
}

/// glibc serves allocations over its mmap threshold (at most 32 MiB) with fresh pages and
/// unmaps them on free, so each of candle's large temporaries (Whisper's encoder attention is
/// 54 MB per layer) costs a page fault and a zeroing per 4 KiB, every window: about a tenth of
/// the encoder's time in a profile on a quiet machine, and a third to a half of it measured on
/// a busy one. Served from the heap
/// and kept there after free, they are reused instead (peak RSS +20-40 MB for Whisper, none
/// measured for the LLM).
///
/// glibc also gives each thread that allocates its own heap (arena), and memory freed in one
/// is not reused by another: with each Whisper window on a pool thread, a transcription's
/// peak RSS rose by 80-100 MB. One arena (unless `MALLOC_ARENA_MAX` says otherwise) took
/// the 183 s speech file from 369-380 MB to 290-301 MB at the same speed, and changed neither
/// the LLM's speed nor `bench pipeline`'s; small allocations still go through each thread's
/// cache without the arena's lock.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes glibc's allocation policy; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20);
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}

/// Entry point for the binary: runs the command and maps errors to exit codes.
pub fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    if let Some(dir) = &cli.model_dir {
        // The store reads its configuration from the environment; set before any thread starts.
        std::env::set_var("PERCEPT_MODEL_DIR", dir);
    }
    percept_pipeline::def::pin_thread_count();
    let result = match cli.command {
        Command::Ask(a) => cmd::ask::run(a),
        Command::Chat(a) => cmd::chat::run(a),
        Command::Transcribe(a) => cmd::transcribe::run(a),
        Command::Tag(a) => cmd::tag::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Search(a) => cmd::search::run(a),
        Command::Listen(a) => cmd::listen::run(a),
        Command::Devices(a) => cmd::devices::run(a),
        Command::Batch(a) => cmd::batch::run(a),
        Command::Fleet(a) => cmd::fleet::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Models(a) => cmd::models::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Demo(a) => cmd::demo::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("percept: {e:#}");
            ExitCode::FAILURE
        }
    }
}
