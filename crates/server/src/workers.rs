//! HTTP's side of the stage threads: the pipeline's [`Service`] (the same one `percept ask`
//! runs on) does the work; this file turns requests into its jobs, waits on blocking threads
//! so the async runtime never stalls, and turns [`JobError`]s into API errors that name the
//! request field at fault. Every call holds its request's queue permit until its reply, so
//! at most `queue` requests have jobs in the stages and a stage's channel never blocks.

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::speech::AudioInput;
use crate::vision::ImageInput;
use percept_core::{AnswerEvent, FinishReason, Prompt, Transcript};
use percept_llm::{GenParams, Generation, LlmError};
use percept_pipeline::service::{EmbedInput, Prepared, Question, Service, StageObserver};
use percept_pipeline::{video, JobError, Media, Stages};
use percept_whisper::Options;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit};

/// A request's place in the work queue, held until its last job is answered.
pub type Permit = Arc<OwnedSemaphorePermit>;

/// What one chat turn brings to the media stages.
pub struct ChatMedia {
    pub question: Question,
    pub audio: Vec<AudioInput>,
    pub images: Vec<ImageInput>,
    /// At most one video: its audio track joins `audio`, its frames `images`.
    pub videos: Vec<AudioInput>,
    /// Bounds on that video (the server's `--max-video-s`).
    pub video_limits: video::VideoLimits,
}

/// One embedding input, with the request field it came from.
pub enum EmbedItem {
    Text(String),
    Image(ImageInput),
}

pub struct Workers {
    service: Arc<Service>,
    metrics: Arc<Metrics>,
    pub llm_id: String,
    pub whisper_id: Option<String>,
    pub clip_id: Option<String>,
    pub loaded: percept_pipeline::service::Loaded,
}

impl StageObserver for Metrics {
    fn job(&self, stage: &'static str, waited: Duration, ran: Duration) {
        self.stage(stage, waited, ran);
    }
}

impl Workers {
    pub fn start(stages: Stages, queue: usize, metrics: Arc<Metrics>) -> Result<Self, String> {
        let observer: Arc<dyn StageObserver> = metrics.clone();
        let service = Service::start(stages, queue + 1, Some(observer));
        let loaded = service.loaded.clone();
        Ok(Workers {
            service: Arc::new(service),
            metrics,
            llm_id: loaded.llm.clone().ok_or("the LLM stage did not load")?,
            whisper_id: loaded.whisper.clone(),
            clip_id: loaded.clip.clone(),
            loaded,
        })
    }

    pub async fn transcribe(
        &self,
        clips: Vec<AudioInput>,
        options: Options,
        permit: Permit,
    ) -> Result<Vec<Transcript>, ApiError> {
        self.need_whisper()?;
        let media = clips.iter().map(audio_media).collect();
        let params = params(&clips, |c| &c.param);
        let r = blocking(self, permit, move |s| s.transcribe(media, options)).await;
        r.map_err(|e| job_error(e, &params, &[]))
    }

    /// Transcribes the clips and sees the images at the same time, then builds the prompt.
    pub async fn prepare(
        &self,
        media: ChatMedia,
        options: Options,
        permit: Permit,
    ) -> Result<Prepared, ApiError> {
        if !media.audio.is_empty() || !media.videos.is_empty() {
            self.need_whisper()?;
        }
        let mut audio = params(&media.audio, |c| &c.param);
        let n_audio = audio.len();
        audio.extend(media.videos.iter().map(|v| v.param.clone()));
        let images = params(&media.images, |i| &i.param);
        let mut q = media.question;
        q.audio = media.audio.iter().map(audio_media).collect();
        q.images = media.images.into_iter().map(image_media).collect();
        let (videos, limits) = (media.videos, media.video_limits);
        let mut prepared = blocking(self, permit, move |s| {
            let seen = video_media(videos, &limits, n_audio, &mut q)?;
            let mut p = s.prepare(q, &options)?;
            if seen {
                let heard = p
                    .transcripts
                    .iter()
                    .find(|t| t.source == video::VIDEO_AUDIO);
                video::label_parts(&mut p.prompt, &p.images, heard);
            }
            Ok(p)
        })
        .await
        .map_err(|e| job_error(e, &audio, &images))?;
        // An image the client sent and the server could not use fails the request.
        if let Some(e) = prepared.image_errors.pop() {
            return Err(job_error(e, &audio, &images));
        }
        for img in &mut prepared.images {
            img.embedding = None;
        }
        Ok(prepared)
    }

    pub async fn embed(
        &self,
        items: Vec<EmbedItem>,
        permit: Permit,
    ) -> Result<Vec<Vec<f32>>, ApiError> {
        let fields: Vec<String> = items
            .iter()
            .map(|i| match i {
                EmbedItem::Text(_) => String::new(),
                EmbedItem::Image(img) => img.param.clone(),
            })
            .collect();
        let inputs = items
            .into_iter()
            .map(|i| match i {
                EmbedItem::Text(t) => EmbedInput::Text(t),
                EmbedItem::Image(img) => EmbedInput::Image(image_media(img)),
            })
            .collect();
        let r = blocking(self, permit, move |s| s.embed(inputs)).await;
        r.map_err(|e| job_error(e, &[], &fields))
    }

    /// Queues a generation; `events` (when streaming) sees it as it decodes, and the reply
    /// arrives when it is finished.
    pub fn generate(
        &self,
        prompt: Prompt,
        params: GenParams,
        cancel: Arc<AtomicBool>,
        events: Option<mpsc::UnboundedSender<AnswerEvent>>,
        permit: Permit,
    ) -> oneshot::Receiver<Result<Generation, ApiError>> {
        let (reply, rx) = oneshot::channel();
        let service = self.service.clone();
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let mut send = |ev: AnswerEvent| {
                if let Some(tx) = &events {
                    let _ = tx.send(ev);
                }
            };
            let result = service.generate(prompt, params, cancel, &mut send);
            count(&metrics, &result);
            drop(permit);
            let _ = reply.send(result.map_err(|e| job_error(e, &[], &[])));
        });
        rx
    }

    fn need_whisper(&self) -> Result<(), ApiError> {
        match self.whisper_id {
            Some(_) => Ok(()),
            None => Err(ApiError::not_loaded(
                "no Whisper model is loaded (start the server with --whisper ID)",
            )),
        }
    }
}

/// Runs a blocking service call off the async runtime; the permit is released just before
/// the result returns, so a client that has its answer finds its place free.
async fn blocking<T: Send + 'static>(
    w: &Workers,
    permit: Permit,
    f: impl FnOnce(&Service) -> Result<T, JobError> + Send + 'static,
) -> Result<T, JobError> {
    let service = w.service.clone();
    let joined = tokio::task::spawn_blocking(move || {
        let r = f(&service);
        drop(permit);
        r
    })
    .await;
    joined.unwrap_or(Err(JobError::Stopped("request")))
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

fn audio_media(a: &AudioInput) -> Media {
    Media::bytes(a.name.clone(), a.bytes.clone(), a.ext.clone())
}

fn image_media(i: ImageInput) -> Media {
    Media::bytes(i.name, i.bytes, None)
}

fn params<T>(items: &[T], f: impl Fn(&T) -> &String) -> Vec<String> {
    items.iter().map(|i| f(i).clone()).collect()
}

fn count(m: &Metrics, result: &Result<Generation, JobError>) {
    let g = match result {
        Ok(g) => g,
        Err(JobError::Cancelled) => {
            m.finish.with_label_values(&["cancelled"]).inc();
            return;
        }
        Err(_) => return,
    };
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
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
        FinishReason::Cancelled => "cancelled",
    };
    m.finish.with_label_values(&[reason]).inc();
}

/// Decodes the request's video into `q`'s clips and pictures; whether there was one.
fn video_media(
    videos: Vec<AudioInput>,
    limits: &video::VideoLimits,
    n_audio: usize,
    q: &mut Question,
) -> Result<bool, JobError> {
    for (k, v) in videos.iter().enumerate() {
        let decoded =
            video::decode_bytes(&v.name, &v.bytes, v.ext.as_deref(), limits).map_err(|e| {
                JobError::Audio {
                    index: n_audio + k,
                    name: v.name.clone(),
                    message: e.to_string(),
                }
            })?;
        let (clip, frames) = video::video_media(decoded);
        q.audio.extend(clip);
        q.images.extend(frames);
    }
    Ok(!videos.is_empty())
}

/// The API error for a failed job; `audio` and `images` name the request field of each input.
fn job_error(e: JobError, audio: &[String], images: &[String]) -> ApiError {
    let field = |list: &[String], i: usize| list.get(i).cloned().unwrap_or_default();
    match e {
        JobError::NotLoaded(m) => ApiError::not_loaded(m),
        JobError::Audio { index, message, .. } => ApiError::invalid(
            field(audio, index),
            format!("cannot use this audio: {message}"),
        )
        .with_code("invalid_audio"),
        JobError::Speech { index, name, error } => match *error {
            percept_whisper::WhisperError::Options(m) => ApiError::invalid(field(audio, index), m),
            other => ApiError::internal(format!("{name}: transcription failed: {other}")),
        },
        JobError::Image { index, error, .. } => ApiError::invalid(
            field(images, index),
            format!("cannot use this image: {error}"),
        )
        .with_code("invalid_image"),
        e @ JobError::Vision { .. } => ApiError::internal(e.to_string()),
        JobError::Llm(e) => match *e {
            e @ LlmError::ContextOverflow { .. } => {
                ApiError::invalid("messages", e).with_code("context_length_exceeded")
            }
            e @ LlmError::Sampling(_) => ApiError::invalid("", e),
            other => ApiError::internal(format!("generation failed: {other}")),
        },
        JobError::Cancelled => ApiError::cancelled(),
        JobError::Stopped(stage) => ApiError::internal(format!(
            "the {stage} stage failed on this request (see the server log)"
        )),
    }
}
