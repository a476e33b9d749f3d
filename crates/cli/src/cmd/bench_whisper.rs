//! `percept bench whisper`: where the time of one transcription goes.

use std::path::PathBuf;

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

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = percept_pipeline::def::whisper_def(&args.model, None)?;
    let b = percept_pipeline::bench::whisper(&def, &args.audio, args.beam)?;
    if args.json {
        println!("{}", serde_json::to_string(&b)?);
        return Ok(());
    }
    println!("model               {}", args.model);
    println!("audio               {:.1} s ({})", b.audio_s, b.audio);
    println!("load                {:.3} s", b.load_s);
    println!(
        "audio decode        {:.3} s ({:.1}% of the transcription)",
        b.audio_decode_s,
        100.0 * b.audio_decode_s / b.total_s.max(1e-9)
    );
    println!("mel                 {:.3} s", b.mel_s);
    let (w, t) = (b.encoder_ms_per_window, b.decode_ms_per_token);
    println!("encoder             {w:.1} ms/window x {}", b.windows);
    println!("decode              {t:.2} ms/token x {}", b.decoded_tokens);
    println!("total (no load)     {:.3} s", b.total_s);
    let rtf = b.real_time_factor;
    println!(
        "real-time factor    {rtf:.4} ({:.1}x real time)",
        1.0 / rtf.max(1e-9)
    );
    println!("peak RSS            {:.0} MB", b.peak_rss_mb);
    Ok(())
}
