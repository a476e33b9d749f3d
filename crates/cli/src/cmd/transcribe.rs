//! `percept transcribe`: audio files to text, JSON, SRT or WebVTT.

use anyhow::Context;
use clap::ValueEnum;
use percept_core::Transcript;
use percept_pipeline::def::whisper_def;
use percept_whisper::{Options, Precision, Task};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Txt,
    Json,
    Srt,
    Vtt,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TaskArg {
    Transcribe,
    Translate,
}

/// The decoder's weights on the CPU, as faster-whisper's `compute_type` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PrecisionArg {
    /// Q8_0 decoder and vocabulary projections: faster, at faster-whisper int8's accuracy.
    Int8,
    /// The encoder's projections as Q8_0 too (as faster-whisper int8 has them): a quarter of
    /// the encoder's weight memory; slower and less accurate on an AVX-512 CPU.
    Int8All,
    /// Every weight in f32: word for word with faster-whisper float32.
    Float32,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Audio files (wav, mp3, flac, ogg/opus, webm, m4a/aac, aiff, caf), or videos' audio
    /// tracks (mp4, mov, mkv, avi).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Model id from the model store, or a model directory.
    #[arg(long, default_value = "whisper-tiny.en")]
    pub model: String,
    #[arg(long, value_enum, default_value = "txt")]
    pub format: Format,
    /// Spoken language code (e.g. en, de); detected when omitted on multilingual models.
    #[arg(long)]
    pub language: Option<String>,
    #[arg(long, value_enum, default_value = "transcribe")]
    pub task: TaskArg,
    /// Beam width; 1 decodes greedily.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub beam: u16,
    /// Write FILE_STEM.FORMAT files here instead of printing.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// Text that primes the decoder (names, spelling, style).
    #[arg(long)]
    pub initial_prompt: Option<String>,
    /// Encode a clip shorter than 30 s at its own length (plus 2 s) rather than as a full
    /// window, like whisper.cpp's --audio-ctx: several times faster on short clips.
    #[arg(long)]
    pub short_window: bool,
    #[arg(long, value_enum, default_value = "int8")]
    pub precision: PrecisionArg,
    /// Longest audio decoded per file, in seconds.
    #[arg(long, default_value_t = percept_media::AudioLimits::CLI.max_seconds)]
    pub max_audio_s: u32,
    #[command(flatten)]
    pub device: super::common::DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut def = whisper_def(&args.model, args.device.device.as_deref())?;
    def.speech.precision = Some(match args.precision {
        PrecisionArg::Int8 => Precision::Int8,
        PrecisionArg::Int8All => Precision::Int8All,
        PrecisionArg::Float32 => Precision::Float32,
    });
    let whisper = percept_pipeline::load_whisper(&def)?;
    let opts = Options {
        language: args.language.clone(),
        task: match args.task {
            TaskArg::Transcribe => Task::Transcribe,
            TaskArg::Translate => Task::Translate,
        },
        beam_size: args.beam as usize,
        initial_prompt: args.initial_prompt.clone(),
        trim_short_window: args.short_window,
        audio_limits: percept_media::AudioLimits::CLI.with_max_seconds(args.max_audio_s),
        ..Options::default()
    };
    if let Some(d) = &args.out_dir {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut failed = 0usize;
    for file in &args.files {
        let result = percept_pipeline::video::transcribe_file(&whisper, file, &opts)
            .map_err(anyhow::Error::from)
            .and_then(|t| emit(&t, file, &args));
        if let Err(e) = result {
            eprintln!("percept: {e:#}");
            failed += 1;
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} files failed", args.files.len());
    }
    Ok(())
}

fn emit(t: &Transcript, file: &Path, args: &Args) -> anyhow::Result<()> {
    let body = render(t, args.format)?;
    match &args.out_dir {
        Some(dir) => {
            // The file extension is the --format value's own name (txt, json, srt, vtt).
            let format = args.format.to_possible_value();
            let ext = format.as_ref().map_or("txt", |v| v.get_name());
            let stem = file.file_stem().unwrap_or(file.as_os_str());
            let out = dir.join(Path::new(stem).with_extension(ext));
            std::fs::write(&out, body).with_context(|| format!("writing {}", out.display()))
        }
        None => {
            print!("{body}");
            Ok(())
        }
    }
}

pub fn render(t: &Transcript, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Txt => format!("{}\n", t.text),
        Format::Json => {
            let segs: Vec<_> = t
                .segments
                .iter()
                .map(|s| {
                    serde_json::json!({
                        "start": s.start, "end": s.end, "text": s.text.trim(),
                        "avg_logprob": s.avg_logprob, "no_speech_prob": s.no_speech_prob,
                    })
                })
                .collect();
            let v = serde_json::json!({
                "source": t.source, "language": t.language, "text": t.text, "segments": segs,
            });
            format!("{}\n", serde_json::to_string_pretty(&v)?)
        }
        Format::Srt => t.srt(),
        Format::Vtt => t.vtt(),
    })
}
