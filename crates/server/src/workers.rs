//! The stage threads behind the HTTP handlers.
//!
//! Each stage (speech, vision, llm) runs on its own thread through `percept_core::Pipeline`,
//! exactly as the CLI wires them. A job carries its input and a one-shot reply sender, so an
//! async handler awaits its own answer while the stage thread does the blocking model work.
//! Because every job holds its request's queue permit, at most `queue` requests have jobs in
//! the stages and the pipeline's channels (capacity `queue + 1`) never block a handler.

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::speech::{decode_audio, AudioInput};
use crate::vision::{VisionJob, VisionOut, VisionWork, VisionWorker};
use crate::Models;
use percept_core::{AnswerEvent, FnStage, Input, Pipeline, Prompt, StageError, Transcript};
use percept_llm::{answer, GenParams, Generation, LlmError};
use percept_whisper::Options;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

pub type Reply<T> = oneshot::Sender<Result<T, ApiError>>;
/// A request's place in the work queue; jobs keep a clone until their stage is done.
pub type Permit = Arc<OwnedSemaphorePermit>;

pub struct SpeechJob {
    pub clips: Vec<AudioInput>,
    pub options: Options,
    pub reply: Reply<Vec<Transcript>>,
    /// Released just before the reply, so a client that has its answer finds its place free.
    pub permit: Permit,
}

pub struct LlmJob {
    pub prompt: Prompt,
    pub params: GenParams,
    pub events: Option<mpsc::UnboundedSender<AnswerEvent>>,
    pub cancel: Arc<AtomicBool>,
    pub reply: Reply<Generation>,
    /// Released just before the reply, so a client that has its answer finds its place free.
    pub permit: Permit,
}

/// Stamped when a job is sent, so the stage can record how long it waited.
pub struct Timed<T> {
    pub job: T,
    pub sent: Instant,
}

/// The feeding ends of the stage threads plus what was loaded.
pub struct Workers {
    speech: Option<Mutex<Input<Timed<SpeechJob>>>>,
    vision: Mutex<Input<Timed<VisionJob>>>,
    llm: Mutex<Input<Timed<LlmJob>>>,
    pub llm_id: String,
    pub whisper_id: Option<String>,
    pub clip_id: Option<String>,
    /// Kept so the stage threads are owned for the server's lifetime.
    _pipeline: Pipeline,
}

impl Workers {
    pub fn start(models: Models, queue: usize, metrics: Arc<Metrics>) -> Self {
        let mut pipeline = Pipeline::new(queue + 1);
        let Models {
            llm,
            llm_id,
            whisper,
            vision,
            classifier,
        } = models;
        let whisper_id = whisper.as_ref().map(|(id, _)| id.clone());
        let clip_id = vision.as_ref().map(|(id, _)| id.clone());

        let speech = whisper.map(|(_, whisper)| {
            let (input, rx) = pipeline.input::<Timed<SpeechJob>>();
            let m = metrics.clone();
            let out = pipeline.add(
                FnStage::new("speech", move |t: Timed<SpeechJob>| {
                    let started = Instant::now();
                    let job = t.job;
                    let result = job
                        .clips
                        .iter()
                        .map(|clip| {
                            let audio = decode_audio(clip, &job.options.audio_limits)?;
                            whisper
                                .transcribe_clip(&audio, &job.options)
                                .map_err(|e| speech_error(clip, e))
                        })
                        .collect::<Result<Vec<_>, ApiError>>();
                    m.stage("speech", started - t.sent, started.elapsed());
                    drop(job.permit);
                    let _ = job.reply.send(result);
                    Ok::<(), StageError>(())
                }),
                rx,
            );
            drain(out);
            Mutex::new(input)
        });

        let (vision_in, rx) = pipeline.input::<Timed<VisionJob>>();
        let mut worker = VisionWorker::new(vision.map(|(_, v)| v), classifier);
        let m = metrics.clone();
        let out = pipeline.add(
            FnStage::new("vision", move |t: Timed<VisionJob>| {
                let started = Instant::now();
                worker.run(t.job);
                m.stage("vision", started - t.sent, started.elapsed());
                Ok::<(), StageError>(())
            }),
            rx,
        );
        drain(out);

        let (llm_in, rx) = pipeline.input::<Timed<LlmJob>>();
        let mut engine = llm;
        let m = metrics;
        let out = pipeline.add(
            FnStage::new("llm", move |t: Timed<LlmJob>| {
                let started = Instant::now();
                let job = t.job;
                if job.cancel.load(Ordering::SeqCst) {
                    // The client left (or timed out) while the job waited: skip it.
                    m.finish.with_label_values(&["cancelled"]).inc();
                    drop(job.permit);
                    let _ = job.reply.send(Err(ApiError::cancelled()));
                    return Ok(());
                }
                let events = job.events;
                let mut send = |ev: AnswerEvent| {
                    if let Some(tx) = &events {
                        let _ = tx.send(ev);
                    }
                };
                let result = answer(
                    &mut engine,
                    &job.prompt,
                    &job.params,
                    &job.cancel,
                    &mut send,
                );
                m.stage("llm", started - t.sent, started.elapsed());
                if let Ok(g) = &result {
                    m.tokens
                        .with_label_values(&["prompt"])
                        .inc_by(g.prompt_tokens as u64);
                    m.tokens
                        .with_label_values(&["completion"])
                        .inc_by(g.completion_tokens as u64);
                    let secs = g.decode_time.as_secs_f64();
                    m.decode_seconds.inc_by(secs);
                    if secs > 0.0 && g.completion_tokens > 1 {
                        m.tokens_per_second.set(g.completion_tokens as f64 / secs);
                    }
                    let reason = match g.finish {
                        percept_core::FinishReason::Stop => "stop",
                        percept_core::FinishReason::Length => "length",
                        percept_core::FinishReason::Cancelled => "cancelled",
                    };
                    m.finish.with_label_values(&[reason]).inc();
                }
                drop(job.permit);
                let _ = job.reply.send(result.map_err(llm_error));
                Ok::<(), StageError>(())
            }),
            rx,
        );
        drain(out);

        Workers {
            speech,
            vision: Mutex::new(vision_in),
            llm: Mutex::new(llm_in),
            llm_id,
            whisper_id,
            clip_id,
            _pipeline: pipeline,
        }
    }

    pub async fn transcribe(
        &self,
        clips: Vec<AudioInput>,
        options: Options,
        permit: Permit,
    ) -> Result<Vec<Transcript>, ApiError> {
        let Some(speech) = &self.speech else {
            return Err(ApiError::not_loaded(
                "no Whisper model is loaded (start the server with --whisper ID)",
            ));
        };
        let (reply, rx) = oneshot::channel();
        let job = SpeechJob {
            clips,
            options,
            reply,
            permit,
        };
        send(speech, job)?;
        recv(rx, "speech").await
    }

    pub async fn vision(&self, work: VisionWork, permit: Permit) -> Result<VisionOut, ApiError> {
        let (reply, rx) = oneshot::channel();
        send(
            &self.vision,
            VisionJob {
                work,
                reply,
                permit,
            },
        )?;
        recv(rx, "vision").await
    }

    /// Queues a generation; the reply arrives when it is finished (events stream meanwhile).
    pub fn generate(&self, job: LlmJob) -> Result<(), ApiError> {
        send(&self.llm, job)
    }
}

fn send<T>(input: &Mutex<Input<Timed<T>>>, job: T) -> Result<(), ApiError> {
    let mut input = input
        .lock()
        .map_err(|_| ApiError::internal("a stage queue is unusable after a panic"))?;
    input
        .send(Timed {
            job,
            sent: Instant::now(),
        })
        .map(|_| ())
        .map_err(|e| ApiError::unavailable(format!("cannot queue the job: {e}")))
}

pub async fn recv<T>(
    rx: oneshot::Receiver<Result<T, ApiError>>,
    stage: &str,
) -> Result<T, ApiError> {
    rx.await.unwrap_or_else(|_| {
        Err(ApiError::internal(format!(
            "the {stage} stage failed on this request (see the server log)"
        )))
    })
}

/// Stage outputs are unit values (replies go through the jobs); reading them keeps the
/// runner's output channel from filling up.
fn drain(out: crossbeam_channel::Receiver<percept_core::Envelope<()>>) {
    std::thread::spawn(move || for _ in out {});
}

fn speech_error(clip: &AudioInput, e: percept_whisper::WhisperError) -> ApiError {
    match e {
        percept_whisper::WhisperError::Options(m) => ApiError::invalid(clip.param.clone(), m),
        other => ApiError::internal(format!("{}: transcription failed: {other}", clip.name)),
    }
}

fn llm_error(e: LlmError) -> ApiError {
    match e {
        LlmError::ContextOverflow { .. } => {
            ApiError::invalid("messages", e).with_code("context_length_exceeded")
        }
        LlmError::Sampling(_) => ApiError::invalid("", e),
        other => ApiError::internal(format!("generation failed: {other}")),
    }
}
