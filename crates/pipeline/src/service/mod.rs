//! The stages as long-lived threads that take jobs: the one way a question reaches the models,
//! for a single `ask` and for every request of the server alike.
//!
//! Speech, vision and the LLM each run on their own thread (a `percept_core::Pipeline` stage)
//! and own their models. A job carries its input and a reply channel; the blocking calls here
//! send a job and wait for its reply, so an async front end runs them on blocking threads.
//! [`Service::prepare`] sends the speech and vision jobs of one question before waiting for
//! either, so an image is seen while the question is transcribed.

mod error;
mod media;
mod vision;

pub use error::JobError;
pub use media::{decode_audio, decode_image, Media, MediaSource};
pub use vision::{EmbedInput, VisionOut, VisionWork, VisionWorker};

use crate::load::Stages;
use crate::probe::ImageProbe;
use crate::prompt::question_prompt;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use percept_core::{
    AnswerEvent, FnStage, Input, Pipeline, Prompt, StageError, StageMetrics, Transcript, Turn,
    VisionContext,
};
use percept_llm::{answer, GenParams, Generation};
use percept_media::image::ImageOptions;
use percept_whisper::Options;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Told how long each job waited for its stage and how long the stage took (the server's
/// metrics).
pub trait StageObserver: Send + Sync {
    fn job(&self, stage: &'static str, waited: Duration, ran: Duration);
}

/// The ids of what was loaded, as a front end names them (`/v1/models`).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub llm: Option<String>,
    pub whisper: Option<String>,
    pub clip: Option<String>,
    /// The LLM's context in tokens (0 without an LLM).
    pub context_length: usize,
    /// The longest token of the LLM's vocabulary in bytes: a text of N bytes is at least
    /// N / this many tokens, so an overlong request is refused before it is tokenized.
    pub max_token_bytes: usize,
}

impl Loaded {
    /// Whether `bytes` of text surely cannot fit the LLM's context, whatever the tokenizer
    /// makes of them.
    pub fn surely_too_long(&self, bytes: usize) -> bool {
        self.context_length > 0 && bytes / self.max_token_bytes.max(1) > self.context_length
    }
}

/// A question and its media, before any stage has run.
#[derive(Debug, Clone, Default)]
pub struct Question {
    pub system: Option<String>,
    pub history: Vec<Turn>,
    /// The person's typed words; without them the first clip is their spoken question.
    pub typed: Option<String>,
    pub audio: Vec<Media>,
    pub images: Vec<Media>,
}

/// What the media stages made of a question: the prompt by the pipeline's one rule, and the
/// parts it was built from.
#[derive(Debug)]
pub struct Prepared {
    pub prompt: Prompt,
    pub transcripts: Vec<Transcript>,
    /// The images that could be used (with CLIP embeddings when CLIP is loaded).
    pub images: Vec<VisionContext>,
    /// The images that could not, each naming its input; the others were still used.
    pub image_errors: Vec<JobError>,
}

struct Job<W, O> {
    work: W,
    reply: Sender<Result<O, JobError>>,
    sent: Instant,
}

struct SpeechWork {
    clips: Vec<Media>,
    options: Options,
}

struct LlmWork {
    prompt: Prompt,
    params: GenParams,
    cancel: Arc<AtomicBool>,
    events: Sender<AnswerEvent>,
}

type Feed<W, O> = Mutex<Input<Job<W, O>>>;

/// The stage threads and the ends that feed them.
pub struct Service {
    speech: Option<Feed<SpeechWork, Vec<Transcript>>>,
    vision: Feed<VisionWork, VisionOut>,
    llm: Option<Feed<LlmWork, Generation>>,
    pub loaded: Loaded,
    /// The definition's Whisper options (command-line audio limits).
    pub speech_options: Options,
    pipeline: Pipeline,
}

impl Service {
    /// Starts a thread per stage over what [`crate::load_stages`] loaded. Vision always runs:
    /// without CLIP or the classifier an image is still described by its facts.
    pub fn start(
        stages: Stages,
        capacity: usize,
        observer: Option<Arc<dyn StageObserver>>,
    ) -> Service {
        let mut pipeline = Pipeline::new(capacity.max(1));
        let Stages {
            speech,
            vision,
            classifier,
            ocr,
            faces,
            llm,
            notices: _,
        } = stages;
        let mut loaded = Loaded::default();
        let mut speech_options = Options::default();

        let speech = speech.map(|s| {
            loaded.whisper = Some(s.id);
            speech_options = s.options;
            let whisper = s.whisper;
            stage(
                &mut pipeline,
                "speech",
                observer.clone(),
                move |w: SpeechWork| {
                    w.clips
                        .iter()
                        .enumerate()
                        .map(|(index, m)| {
                            let clip = decode_audio(index, m, &w.options.audio_limits)?;
                            whisper.transcribe_clip(&clip, &w.options).map_err(|e| {
                                JobError::Speech {
                                    index,
                                    name: m.name.clone(),
                                    error: Box::new(e),
                                }
                            })
                        })
                        .collect()
                },
            )
        });

        loaded.clip = vision.as_ref().map(|v| v.id.clone());
        let worker =
            VisionWorker::new(vision.map(|v| v.stage), classifier, ImageOptions::default())
                .with_ocr(ocr)
                .with_faces(faces);
        let vision = stage(&mut pipeline, "vision", observer.clone(), move |w| {
            worker.run(w)
        });

        let llm = llm.map(|l| {
            loaded.llm = Some(l.id);
            let mut engine = l.engine;
            loaded.context_length = engine.context_length();
            loaded.max_token_bytes = engine
                .tokenizer
                .inner()
                .get_vocab(true)
                .keys()
                .map(String::len)
                .max()
                .unwrap_or(1);
            stage(&mut pipeline, "llm", observer, move |w: LlmWork| {
                if w.cancel.load(Ordering::SeqCst) {
                    return Err(JobError::Cancelled);
                }
                let mut send = |ev: AnswerEvent| {
                    let _ = w.events.send(ev);
                };
                Ok(answer(
                    &mut engine,
                    &w.prompt,
                    &w.params,
                    &w.cancel,
                    &mut send,
                )?)
            })
        });

        Service {
            speech,
            vision,
            llm,
            loaded,
            speech_options,
            pipeline,
        }
    }

    /// Transcribes each clip with `options` (whose audio limits apply while decoding).
    pub fn transcribe(
        &self,
        clips: Vec<Media>,
        options: Options,
    ) -> Result<Vec<Transcript>, JobError> {
        let feed = self.speech.as_ref().ok_or_else(no_whisper)?;
        wait(
            submit(feed, SpeechWork { clips, options }, "speech")?,
            "speech",
        )
    }

    pub fn vision(&self, work: VisionWork) -> Result<VisionOut, JobError> {
        wait(submit(&self.vision, work, "vision")?, "vision")
    }

    pub fn embed(&self, inputs: Vec<EmbedInput>) -> Result<Vec<Vec<f32>>, JobError> {
        match self.vision(VisionWork::Embed(inputs))? {
            VisionOut::Embeddings(v) => Ok(v),
            _ => Err(JobError::Stopped("vision")),
        }
    }

    /// CLIP's scores for `candidates` on each image that has an embedding.
    pub fn probe(
        &self,
        images: Vec<VisionContext>,
        candidates: Vec<String>,
    ) -> Result<Vec<ImageProbe>, JobError> {
        match self.vision(VisionWork::Probe { images, candidates })? {
            VisionOut::Probes(p) => Ok(p),
            _ => Err(JobError::Stopped("vision")),
        }
    }

    /// Runs the media stages for `q` at the same time and builds its prompt. A clip that
    /// cannot be used fails the question; an image that cannot is reported and skipped.
    pub fn prepare(&self, q: Question, options: &Options) -> Result<Prepared, JobError> {
        let heard = if q.audio.is_empty() {
            None
        } else {
            let feed = self.speech.as_ref().ok_or_else(no_whisper)?;
            let work = SpeechWork {
                clips: q.audio,
                options: options.clone(),
            };
            Some(submit(feed, work, "speech")?)
        };
        let seen = if q.images.is_empty() {
            None
        } else {
            Some(submit(
                &self.vision,
                VisionWork::Describe(q.images),
                "vision",
            )?)
        };
        let transcripts = match heard {
            Some(rx) => wait(rx, "speech")?,
            None => Vec::new(),
        };
        let mut images = Vec::new();
        let mut image_errors = Vec::new();
        if let Some(rx) = seen {
            let VisionOut::Contexts(results) = wait(rx, "vision")? else {
                return Err(JobError::Stopped("vision"));
            };
            for r in results {
                match r {
                    Ok(ctx) => images.push(ctx),
                    Err(e) => image_errors.push(e),
                }
            }
        }
        let prompt = question_prompt(
            q.system,
            q.history,
            q.typed.as_deref(),
            &transcripts,
            &images,
        );
        Ok(Prepared {
            prompt,
            transcripts,
            images,
            image_errors,
        })
    }

    /// Generates an answer to `prompt`; `on_event` sees each event on the calling thread while
    /// the LLM thread decodes. `cancel` stops it (or skips it if it has not started).
    pub fn generate(
        &self,
        prompt: Prompt,
        params: GenParams,
        cancel: Arc<AtomicBool>,
        on_event: &mut dyn FnMut(AnswerEvent),
    ) -> Result<Generation, JobError> {
        let feed = self
            .llm
            .as_ref()
            .ok_or_else(|| JobError::NotLoaded("no LLM is loaded".to_string()))?;
        let (events, rx) = unbounded();
        let work = LlmWork {
            prompt,
            params,
            cancel,
            events,
        };
        let reply = submit(feed, work, "llm")?;
        // The job holds the only sender: this ends when the generation does.
        for ev in rx {
            on_event(ev);
        }
        wait(reply, "llm")
    }

    /// Stops the stage threads and reports what each did.
    pub fn finish(self) -> Vec<StageMetrics> {
        let Service {
            speech,
            vision,
            llm,
            pipeline,
            ..
        } = self;
        drop((speech, vision, llm));
        pipeline.join().stages
    }
}

fn no_whisper() -> JobError {
    JobError::NotLoaded("no Whisper model is loaded".to_string())
}

/// Adds a stage whose every item is a job; its output channel carries nothing (replies go
/// through the jobs), so a thread drains it.
fn stage<W, O>(
    pipeline: &mut Pipeline,
    name: &'static str,
    observer: Option<Arc<dyn StageObserver>>,
    mut run: impl FnMut(W) -> Result<O, JobError> + Send + 'static,
) -> Feed<W, O>
where
    W: Send + 'static,
    O: Send + 'static,
{
    let (input, rx) = pipeline.input::<Job<W, O>>();
    let out = pipeline.add(
        FnStage::new(name, move |job: Job<W, O>| {
            let started = Instant::now();
            let result = run(job.work);
            if let Some(o) = &observer {
                o.job(name, started - job.sent, started.elapsed());
            }
            let _ = job.reply.send(result);
            Ok::<(), StageError>(())
        }),
        rx,
    );
    std::thread::spawn(move || for _ in out {});
    Mutex::new(input)
}

fn submit<W, O>(
    feed: &Feed<W, O>,
    work: W,
    stage: &'static str,
) -> Result<Receiver<Result<O, JobError>>, JobError> {
    let (reply, rx) = bounded(1);
    let mut input = feed.lock().map_err(|_| JobError::Stopped(stage))?;
    input
        .send(Job {
            work,
            reply,
            sent: Instant::now(),
        })
        .map_err(|_| JobError::Stopped(stage))?;
    Ok(rx)
}

fn wait<O>(rx: Receiver<Result<O, JobError>>, stage: &'static str) -> Result<O, JobError> {
    rx.recv().unwrap_or(Err(JobError::Stopped(stage)))
}
