//! `percept listen`: a spoken conversation through the microphone (or a file played as one).
//!
//! capture -> percept-listen's front end (16 kHz, endpointing, whole-utterance queue) ->
//! forwarder -> Whisper stage -> this thread -> LLM stage, whose deltas stream to stdout.
//! Whisper transcribes the next utterance while the LLM answers the current one. History
//! grows turn by turn so the engine's cache only feeds each turn's new tokens.

mod models;
mod support;

use super::ask::LlmArgs;
use super::ask_media::DEFAULT_WHISPER;
use anyhow::{bail, Context};
use percept_core::{AnswerEvent, FinishReason, Pipeline, Prompt, Turn, TurnRole, Untrusted};
use percept_listen::{
    capture_queue, spawn_frontend, utterance_queue, FileSource, Notice, Overflow, Pace, Utterance,
    VadConfig,
};
use percept_llm::LlmRequest;
use percept_whisper::{Device, Whisper};
use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Endpointing thresholds.
#[derive(Debug, Clone, clap::Args)]
pub struct VadArgs {
    /// A frame is speech when this many dB above the adaptive noise floor.
    #[arg(long, default_value_t = 12.0)]
    pub vad_threshold_db: f32,
    /// Frames quieter than this (dBFS) are never speech.
    #[arg(long, default_value_t = -50.0, allow_hyphen_values = true)]
    pub vad_min_level_db: f32,
    /// Silence that ends an utterance.
    #[arg(long, default_value_t = 500)]
    pub hangover_ms: u32,
    /// Voiced audio an utterance needs (shorter bursts are ignored as noise).
    #[arg(long, default_value_t = 200)]
    pub min_speech_ms: u32,
    /// Audio kept before speech starts.
    #[arg(long, default_value_t = 200)]
    pub pre_roll_ms: u32,
    /// Longest utterance; longer speech is cut here.
    #[arg(long, default_value_t = 28_000)]
    pub max_utterance_ms: u32,
    /// How fast the noise floor may rise (dB per second).
    #[arg(long, default_value_t = 3.0)]
    pub floor_rise_db: f32,
    /// Start transcribing after this much silence, before the hangover ends (0 = off); the
    /// result is kept only if no speech follows.
    #[arg(long, default_value_t = 150)]
    pub early_ms: u32,
}

impl VadArgs {
    pub fn config(&self) -> VadConfig {
        VadConfig {
            threshold_db: self.vad_threshold_db,
            min_level_db: self.vad_min_level_db,
            hangover_ms: self.hangover_ms,
            min_speech_ms: self.min_speech_ms,
            pre_roll_ms: self.pre_roll_ms,
            max_utterance_ms: self.max_utterance_ms,
            floor_rise_db_per_s: self.floor_rise_db,
            early_ms: self.early_ms,
            ..VadConfig::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Input device name or id (see `percept devices`); default: the system default.
    #[arg(long)]
    pub device: Option<String>,
    /// Play this audio file through the live path instead of the microphone (real-time pace).
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// With --input: as fast as the models go, and never drop an utterance.
    #[arg(long, requires = "input")]
    pub fast: bool,
    /// An image that stays in the conversation's context (CLIP tags when available, facts).
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,
    /// CLIP model folder for --image; default: the store's clip-vit-base-patch32 when present.
    #[arg(long, value_name = "DIR")]
    pub clip_dir: Option<PathBuf>,
    /// Whisper model id or directory.
    #[arg(long, default_value = DEFAULT_WHISPER)]
    pub whisper: String,
    /// Named pipeline or pipeline .toml: picks the models unless --whisper / --model name them.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Utterances waiting for the models; when full the oldest waiting one is dropped.
    #[arg(long, default_value_t = 2)]
    pub queue: usize,
    /// Stop after this many answered turns.
    #[arg(long)]
    pub max_turns: Option<usize>,
    /// One JSON object per turn instead of `you:` / `percept:` lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub vad: VadArgs,
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// Where the audio comes from.
pub(crate) enum Source {
    Mic(Option<String>),
    File(PathBuf, Pace),
}

/// A whole listening session's settings (shared with `bench listen`).
pub(crate) struct Live {
    pub source: Source,
    pub vad: VadConfig,
    pub queue: usize,
    pub whisper: String,
    pub llm: LlmArgs,
    pub image: Option<Untrusted>,
    pub max_turns: Option<usize>,
}

/// One answered turn.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TurnReport {
    pub turn: usize,
    pub utterance: u64,
    /// Stream time of the utterance (seconds).
    pub start_s: f64,
    pub end_s: f64,
    pub transcript: String,
    /// Earlier turns (user and assistant messages) in this turn's prompt.
    pub history_turns: usize,
    pub answer: String,
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub completion_tokens: usize,
    /// Live sources: from the end of speech to the first answer token.
    pub latency_ms: Option<f64>,
    /// From the end of speech until the endpointer closed the utterance (hangover, buffering).
    pub endpoint_ms: Option<f64>,
    /// From the closed utterance to its transcript (queueing and Whisper; negative when a
    /// tentative copy finished before the hangover ran out).
    pub transcribe_ms: f64,
    /// The transcript waited this long for the previous answer to finish.
    pub wait_ms: f64,
    /// From taking the transcript to the first answer token (prompt prefill).
    pub first_token_ms: Option<f64>,
}

/// What a session reports as it goes.
pub(crate) enum Event<'a> {
    Heard { text: &'a str },
    Delta(&'a str),
    Done(&'a TurnReport),
}

struct Pending {
    end_at: Option<Instant>,
    closed_at: Instant,
    start_s: f64,
    end_s: f64,
}

pub fn run(mut args: Args) -> anyhow::Result<()> {
    crate::pipelines::resolve(
        args.pipeline.as_deref(),
        &mut args.llm,
        &mut args.whisper,
        &mut args.clip_dir,
    )?;
    let image = match &args.image {
        Some(path) => Some(support::describe_image_file(
            path,
            args.clip_dir.as_deref(),
        )?),
        None => None,
    };
    let source = match args.input.clone() {
        Some(path) => Source::File(
            path,
            if args.fast {
                Pace::Fast
            } else {
                Pace::RealTime
            },
        ),
        None => Source::Mic(args.device.clone()),
    };
    let live = Live {
        source,
        vad: args.vad.config(),
        queue: args.queue,
        whisper: args.whisper.clone(),
        llm: args.llm.clone(),
        image,
        max_turns: args.max_turns,
    };
    let json = args.json;
    let mut out = std::io::stdout().lock();
    let mut print = |ev: Event| -> std::io::Result<()> {
        match (json, ev) {
            (false, Event::Heard { text }) => write!(out, "you: {text}\npercept: ")?,
            (false, Event::Delta(text)) => write!(out, "{text}")?,
            (false, Event::Done(_)) => writeln!(out)?,
            (true, Event::Done(r)) => writeln!(out, "{}", serde_json::to_string(r)?)?,
            (true, _) => {}
        }
        out.flush()
    };
    let turns = session(&live, &mut print)?;
    eprintln!("percept: {} turn(s)", turns.len());
    Ok(())
}

/// Runs the live path until the source ends, Ctrl-C, or `max_turns`; returns the turns.
pub(crate) fn session(
    live: &Live,
    on_event: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> anyhow::Result<Vec<TurnReport>> {
    live.vad.validate()?;
    let dir = percept_models::locate(&live.whisper)?;
    let whisper = Whisper::load(&dir, &Device::Cpu)
        .with_context(|| format!("loading Whisper from {}", dir.display()))?;
    let mut engine = live.llm.load()?;
    models::warm_up(&whisper, &mut engine);

    let stop = Arc::new(AtomicBool::new(false));
    let cancel = Arc::new(AtomicBool::new(false));
    let mut pipeline = Pipeline::new(1);
    {
        let (stop, cancel, shutdown) = (stop.clone(), cancel.clone(), pipeline.shutdown());
        ctrlc::set_handler(move || {
            stop.store(true, Ordering::SeqCst);
            cancel.store(true, Ordering::SeqCst);
            shutdown.trigger();
        })
        .context("installing the Ctrl-C handler")?;
    }
    let (audio_in, audio_rx) = pipeline.input::<Utterance>();
    let (mut llm_in, llm_rx) = pipeline.input::<LlmRequest>();
    let compute = models::Compute::default();
    let transcripts = pipeline.add(models::speech_stage(whisper, compute.clone()), audio_rx);
    let answers = pipeline.add(models::llm_stage(engine, compute), llm_rx);

    // About 10 s of 20 ms chunks: only a stalled front end ever fills it.
    let (cap_tx, cap_rx) = capture_queue(512);
    let policy = match live.source {
        Source::File(_, Pace::Fast) => Overflow::Block,
        _ => Overflow::DropOldest,
    };
    let (utt_tx, utt_rx) = utterance_queue(live.queue, policy);
    let (notice_tx, notice_rx) = crossbeam_channel::unbounded::<Notice>();
    let (source_thread, rate) = start_source(&live.source, cap_tx, notice_tx.clone(), &stop)?;
    let mut vad = live.vad.clone();
    if policy == Overflow::Block {
        // Nobody waits on a file read flat out: a head start only risks wasted work.
        vad.early_ms = 0;
    }
    let frontend = spawn_frontend(cap_rx, rate, vad, utt_tx, notice_tx)?;
    let notices = std::thread::spawn(move || {
        for n in notice_rx {
            eprintln!("percept: {}", support::describe_notice(&n));
        }
    });
    let pending: Arc<Mutex<HashMap<u64, Pending>>> = Arc::default();
    let forwarder = {
        let (pending, stop) = (pending.clone(), stop.clone());
        let mut audio_in = audio_in;
        std::thread::spawn(move || {
            for u in utt_rx {
                if stop.load(Ordering::SeqCst) {
                    continue;
                }
                // Even ids are utterances, odd ids their tentative copies.
                let id = u.index * 2 + u64::from(u.tentative);
                if !u.tentative {
                    let meta = Pending {
                        end_at: u.end_at,
                        closed_at: u.closed_at.unwrap_or_else(Instant::now),
                        start_s: u.start_s,
                        end_s: u.end_s,
                    };
                    lock(&pending).insert(id, meta);
                }
                if audio_in.send_with_id(id, u).is_err() {
                    break;
                }
            }
        })
    };

    let live_clock = !matches!(live.source, Source::File(_, Pace::Fast));
    let mut history: Vec<Turn> = Vec::new();
    let mut reports = Vec::new();
    let mut result = Ok(());
    for env in &transcripts {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let heard_at = Instant::now();
        let index = env.id / 2;
        let (transcript, transcribed_at) = match env.result {
            Ok(Some(t)) => t,
            // A tentative copy: kept by the speech stage for its final.
            Ok(None) => continue,
            Err(e) => {
                eprintln!("percept: utterance {index}: {}", e.message);
                continue;
            }
        };
        let meta = lock(&pending).remove(&env.id);
        let text = transcript.text.trim().to_string();
        if text.is_empty() {
            eprintln!("percept: utterance {index} held no words");
            continue;
        }
        if let Err(e) = on_event(Event::Heard { text: &text }) {
            result = Err(e.into());
            break;
        }
        let prompt = Prompt {
            system: live.llm.system.clone(),
            history: history.clone(),
            question: Some(Untrusted {
                label: format!("what the user said (transcript of utterance {index})"),
                text: text.clone(),
            }),
            context: live.image.iter().cloned().collect(),
        };
        let (tx, events) = crossbeam_channel::unbounded();
        let mut request = LlmRequest::new(prompt);
        request.params = live.llm.gen_params();
        request.events = Some(tx);
        request.cancel = Some(cancel.clone());
        if llm_in.send(request).is_err() {
            break;
        }
        let mut first_token: Option<Instant> = None;
        for ev in events {
            if let AnswerEvent::Delta { text } = &ev {
                first_token.get_or_insert_with(Instant::now);
                if let Err(e) = on_event(Event::Delta(text)) {
                    result = Err(e.into());
                }
            }
        }
        let generation = match answers.recv().context("the LLM stage stopped")?.result {
            Ok(g) => g,
            Err(e) => bail!("answering utterance {index}: {}", e.message),
        };
        let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1e3;
        let report = TurnReport {
            turn: reports.len(),
            utterance: index,
            start_s: meta.as_ref().map_or(0.0, |m| m.start_s),
            end_s: meta.as_ref().map_or(0.0, |m| m.end_s),
            transcript: text.clone(),
            history_turns: history.len(),
            answer: generation.text.clone(),
            finish: generation.finish,
            prompt_tokens: generation.prompt_tokens,
            reused_tokens: generation.reused_tokens,
            completion_tokens: generation.completion_tokens,
            latency_ms: live_clock
                .then(|| meta.as_ref().and_then(|m| m.end_at))
                .flatten()
                .zip(first_token)
                .map(|(a, b)| ms(a, b)),
            endpoint_ms: live_clock
                .then(|| {
                    meta.as_ref()
                        .and_then(|m| m.end_at.map(|e| ms(e, m.closed_at)))
                })
                .flatten(),
            transcribe_ms: meta
                .as_ref()
                .map_or(0.0, |m| signed_ms(m.closed_at, transcribed_at)),
            wait_ms: ms(transcribed_at, heard_at),
            first_token_ms: first_token.map(|t| ms(heard_at, t)),
        };
        history.push(Turn {
            role: TurnRole::User,
            text,
        });
        history.push(Turn {
            role: TurnRole::Assistant,
            text: generation.text,
        });
        if let Err(e) = on_event(Event::Done(&report)) {
            result = Err(e.into());
        }
        reports.push(report);
        if result.is_err() || live.max_turns.is_some_and(|n| reports.len() >= n) {
            break;
        }
    }
    // Wind down: stop the source, let queued work drain without answering it.
    stop.store(true, Ordering::SeqCst);
    pipeline.shutdown().trigger();
    drop(llm_in);
    for _ in &transcripts {}
    let _ = forwarder.join();
    let _ = frontend.join();
    let source_result = source_thread.join();
    let _ = notices.join();
    drop(answers);
    pipeline.join();
    match source_result {
        Ok(Err(e)) => return Err(e),
        Err(_) => bail!("the audio source thread panicked"),
        Ok(Ok(())) => {}
    }
    result.map(|()| reports)
}

pub(super) type SourceThread = std::thread::JoinHandle<anyhow::Result<()>>;

/// Starts capture on its own thread; returns it and the rate of the chunks it sends.
fn start_source(
    source: &Source,
    tx: percept_listen::CaptureTx,
    notices: crossbeam_channel::Sender<Notice>,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<(SourceThread, u32)> {
    let stop = stop.clone();
    match source {
        Source::File(path, pace) => {
            let file = FileSource::open(path)?;
            let rate = file.rate();
            let pace = *pace;
            eprintln!(
                "percept: listening to {} ({})",
                path.display(),
                match pace {
                    Pace::Fast => "as fast as possible",
                    Pace::RealTime => "real time",
                }
            );
            let t = std::thread::spawn(move || {
                file.run(tx, pace, &stop)?;
                Ok(())
            });
            Ok((t, rate))
        }
        Source::Mic(name) => support::mic_source(name.as_deref(), tx, notices, stop),
    }
}

fn signed_ms(a: Instant, b: Instant) -> f64 {
    if b >= a {
        (b - a).as_secs_f64() * 1e3
    } else {
        -((a - b).as_secs_f64() * 1e3)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
