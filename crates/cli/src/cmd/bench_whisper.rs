//! `percept bench whisper`: where the time of one transcription goes.

use percept_whisper::{Options, Timings};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Model id from the model store, or a model directory.
    #[arg(long, default_value = "whisper-tiny.en")]
    pub model: String,
    /// Audio file to transcribe.
    #[arg(long)]
    pub audio: PathBuf,
    /// Beam width; 1 decodes greedily.
    #[arg(long, default_value_t = 1)]
    pub beam: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Peak resident set size of this process in MB (Linux; 0 elsewhere).
fn peak_rss_mb() -> f64 {
    super::bench_util::peak_rss_mib().unwrap_or(0.0)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let whisper = super::transcribe::load_model(&args.model, None)?;
    let load_s = t0.elapsed().as_secs_f64();
    let opts = Options {
        beam_size: args.beam,
        ..Options::default()
    };
    let mut tm = Timings::default();
    let t1 = Instant::now();
    let transcript = whisper.transcribe_file_timed(&args.audio, &opts, &mut tm)?;
    let total_s = t1.elapsed().as_secs_f64();
    let per_window = tm.encoder.as_secs_f64() * 1000.0 / tm.windows.max(1) as f64;
    let per_token = tm.decode.as_secs_f64() * 1000.0 / tm.decoded_tokens.max(1) as f64;
    let rtf = total_s / tm.audio_secs.max(1e-9);
    let v = serde_json::json!({
        "model": args.model,
        "audio": args.audio.display().to_string(),
        "audio_s": tm.audio_secs,
        "load_s": load_s,
        "mel_s": tm.mel.as_secs_f64(),
        "windows": tm.windows,
        "encoder_ms_per_window": per_window,
        "decode_s": tm.decode.as_secs_f64(),
        "decoded_tokens": tm.decoded_tokens,
        "fallbacks": tm.fallbacks,
        "decode_ms_per_token": per_token,
        "total_s": total_s,
        "real_time_factor": rtf,
        "peak_rss_mb": peak_rss_mb(),
        "words": transcript.text.split_whitespace().count(),
    });
    if args.json {
        println!("{v}");
    } else {
        println!("model               {}", args.model);
        println!(
            "audio               {:.1} s ({})",
            tm.audio_secs,
            args.audio.display()
        );
        println!("load                {load_s:.3} s");
        println!("mel                 {:.3} s", tm.mel.as_secs_f64());
        println!(
            "encoder             {per_window:.1} ms/window x {}",
            tm.windows
        );
        println!(
            "decode              {per_token:.2} ms/token x {}",
            tm.decoded_tokens
        );
        println!("total (no load)     {total_s:.3} s");
        println!(
            "real-time factor    {rtf:.4} ({:.1}x real time)",
            1.0 / rtf.max(1e-9)
        );
        println!("peak RSS            {:.0} MB", peak_rss_mb());
    }
    Ok(())
}
