//! The listen session: a spoken conversation through the microphone (or a file played as one).
//!
//! capture -> percept-listen's front end (16 kHz, endpointing, whole-utterance queue) ->
//! forwarder -> Whisper stage -> this thread -> LLM stage, whose deltas stream to stdout.
//! Whisper transcribes the next utterance while the LLM answers the current one. History
//! grows turn by turn so the engine's cache only feeds each turn's new tokens.

mod models;
mod source;

use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use crate::load::{load_stages, Need};
use crate::prompt::question_prompt;
use percept_core::{AnswerEvent, FinishReason, Pipeline, Transcript, Turn, TurnRole, Untrusted};
use percept_listen::{
    capture_queue, spawn_frontend, utterance_queue, Notice, Overflow, Pace, Utterance, VadConfig,
};
use percept_llm::LlmRequest;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

pub use source::{describe_image_file, describe_notice};

/// Where the audio comes from.
pub enum Source {
    Mic(Option<String>),
    File(PathBuf, Pace),
}

/// Lines for the person while a session runs (a dropped utterance, the device in use).
pub type NoticeFn = Arc<dyn Fn(&str) + Send + Sync>;

/// A whole listening session's settings.
pub struct Live {
    pub source: Source,
    pub vad: VadConfig,
    pub queue: usize,
    /// Models, system prompt and sampling.
    pub def: PipelineDef,
    /// An image that stays in the conversation's context (see [`describe_image_file`]).
    pub image: Option<Untrusted>,
    pub max_turns: Option<usize>,
    /// Set by the caller (Ctrl-C) to end the session: the answer being written stops.
    pub stop: Arc<AtomicBool>,
    pub notice: NoticeFn,
}

/// One answered turn.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TurnReport {
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
pub enum Event<'a> {
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

/// Runs the live path until the source ends, Ctrl-C, or `max_turns`; returns the turns.
pub fn session(
    live: &Live,
    on_event: &mut dyn FnMut(Event) -> std::io::Result<()>,
) -> Result<Vec<TurnReport>> {
    live.vad.validate()?;
    let need = Need {
        speech: true,
        vision: false,
        llm: true,
    };
    let loaded = load_stages(&live.def, need)?;
    for n in &loaded.notices {
        (live.notice)(n);
    }
    let missing = || PipelineError::invalid("listen needs Whisper and the LLM loaded");
    let whisper = loaded.speech.ok_or_else(missing)?.whisper;
    let mut engine = loaded.llm.ok_or_else(missing)?.engine;
    models::warm_up(&whisper, &mut engine);

    let stop = live.stop.clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut pipeline = Pipeline::new(1);
    let finished = Arc::new(AtomicBool::new(false));
    // The caller's stop flag also cancels the answer being written and stops the stages.
    let watcher = {
        let (stop, cancel, finished) = (stop.clone(), cancel.clone(), finished.clone());
        let shutdown = pipeline.shutdown();
        std::thread::spawn(move || {
            while !finished.load(Ordering::SeqCst) {
                if stop.load(Ordering::SeqCst) {
                    cancel.store(true, Ordering::SeqCst);
                    shutdown.trigger();
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
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
    let (source_thread, rate) = start_source(live, cap_tx, notice_tx.clone())?;
    let mut vad = live.vad.clone();
    if policy == Overflow::Block {
        // Nobody waits on a file read flat out: a head start only risks wasted work.
        vad.early_ms = 0;
    }
    let frontend = spawn_frontend(cap_rx, rate, vad, utt_tx, notice_tx)?;
    let notices = {
        let notice = live.notice.clone();
        std::thread::spawn(move || {
            for n in notice_rx {
                notice(&describe_notice(&n));
            }
        })
    };
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
                (live.notice)(&format!("utterance {index}: {}", e.message));
                continue;
            }
        };
        let meta = lock(&pending).remove(&env.id);
        let text = transcript.text.trim().to_string();
        if text.is_empty() {
            (live.notice)(&format!("utterance {index} held no words"));
            continue;
        }
        if let Err(e) = on_event(Event::Heard { text: &text }) {
            result = Err(e.into());
            break;
        }
        // The person at the microphone is the user: their words are the question.
        let heard = Transcript {
            source: format!("utterance {index}"),
            text: text.clone(),
            ..Transcript::default()
        };
        let mut prompt = question_prompt(
            live.def.system.clone(),
            history.clone(),
            None,
            std::slice::from_ref(&heard),
            &[],
        );
        prompt.context.extend(live.image.iter().cloned());
        let (tx, events) = crossbeam_channel::unbounded();
        let mut request = LlmRequest::new(prompt);
        request.params = live.def.gen_params();
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
        let stopped = || PipelineError::invalid("the LLM stage stopped");
        let generation = match answers.recv().map_err(|_| stopped())?.result {
            Ok(g) => g,
            Err(e) => {
                return Err(PipelineError::stage(
                    format!("answering utterance {index}"),
                    e.message,
                ))
            }
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
    finished.store(true, Ordering::SeqCst);
    let _ = watcher.join();
    match source_result {
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(PipelineError::invalid("the audio source thread panicked")),
        Ok(Ok(())) => {}
    }
    result.map(|()| reports)
}

type SourceThread = std::thread::JoinHandle<Result<()>>;

/// Starts capture on its own thread; returns it and the rate of the chunks it sends.
fn start_source(
    live: &Live,
    tx: percept_listen::CaptureTx,
    notices: crossbeam_channel::Sender<Notice>,
) -> Result<(SourceThread, u32)> {
    let stop = live.stop.clone();
    match &live.source {
        Source::File(path, pace) => {
            let max_s = live
                .def
                .audio_limits(percept_media::AudioLimits::CLI)
                .max_seconds;
            let file = crate::video::open_file_source(path, max_s)?;
            let rate = file.rate();
            let pace = *pace;
            (live.notice)(&format!(
                "listening to {} ({})",
                path.display(),
                match pace {
                    Pace::Fast => "as fast as possible",
                    Pace::RealTime => "real time",
                }
            ));
            let t = std::thread::spawn(move || {
                file.run(tx, pace, &stop)?;
                Ok(())
            });
            Ok((t, rate))
        }
        Source::Mic(name) => source::mic_source(name.as_deref(), tx, notices, stop, &live.notice),
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
