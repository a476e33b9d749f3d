//! One batch run through core's runner:
//!
//! ```text
//! feeder(audio) -> decode-audio -> speech --\
//!                                            merge -> llm (only with a question) -> writer
//! feeder(image) -> decode-image -> vision --/
//! feeder(video) -> video ------------------/
//! ```
//!
//! The video stage decodes a video (its audio track, sampled frames) and runs Whisper and
//! the vision models on it in turn, sharing their locks with the other stages.
//!
//! Every queue is bounded, so a slow stage holds back its feeders instead of filling memory.
//! In sequential mode one feeder waits for each file's record before sending the next, which
//! is the baseline `bench pipeline` compares against.

use super::models::{lock, Models};
use super::record::{Kind, Results, Timings};
use super::walk::Entry;
use crossbeam_channel::{Receiver, RecvTimeoutError, Select};
use percept_core::{
    AudioClip, DecodedImage, Envelope, FnStage, Input, ItemError, Pipeline, PipelineReport, Prompt,
    StageError, Untrusted,
};
use percept_llm::answer;
use percept_media::image::{decode_image_file, ImageOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a file has gathered so far on its way through the stages.
#[derive(Debug, Default)]
pub struct Work {
    id: u64,
    pub name: String,
    pub results: Results,
    pub timings: Timings,
}

struct Job {
    id: u64,
    path: PathBuf,
    name: String,
}

/// Items finished per stage, for the progress line.
#[derive(Debug, Default)]
pub struct StageCounts {
    pub decode: AtomicU64,
    pub speech: AtomicU64,
    pub vision: AtomicU64,
    pub llm: AtomicU64,
    /// Stage timings of files that failed, by item id, until their error record is written
    /// (an error travelling through the runner carries only its message).
    failed: Mutex<HashMap<u64, Timings>>,
}

impl StageCounts {
    /// Splits a stage result into the work (for the next stage) and its output, keeping the
    /// timings of a failed file aside.
    fn settle<T>(&self, w: Work, r: Result<T, StageError>) -> Result<(Work, T), StageError> {
        match r {
            Ok(t) => Ok((w, t)),
            Err(e) => {
                lock(&self.failed).insert(w.id, w.timings);
                Err(e)
            }
        }
    }

    fn take_failed(&self, id: u64) -> Timings {
        lock(&self.failed).remove(&id).unwrap_or_default()
    }

    pub fn line(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "decode {} · speech {} · vision {} · llm {}",
            g(&self.decode),
            g(&self.speech),
            g(&self.vision),
            g(&self.llm)
        )
    }
}

pub struct RunOptions {
    pub question: Option<String>,
    pub sequential: bool,
    pub capacity: usize,
}

/// Runs `entries` (audio and image files) through the stages. `on_done` gets each file's
/// index in `entries` and its outcome, on this thread, in completion order; `tick` runs a few
/// times a second. Setting `stop` sends no further files; those in flight still finish.
pub fn run(
    models: &Models,
    entries: &[Entry],
    opts: &RunOptions,
    stop: &AtomicBool,
    counts: &Arc<StageCounts>,
    on_done: &mut dyn FnMut(usize, Result<Work, (ItemError, Timings)>) -> crate::Result<()>,
    tick: &mut dyn FnMut(),
) -> crate::Result<PipelineReport> {
    let mut pipeline = Pipeline::new(opts.capacity);
    let (audio_in, audio_rx) = pipeline.input::<Job>();
    let (image_in, image_rx) = pipeline.input::<Job>();
    let (video_in, video_rx) = pipeline.input::<Job>();
    let (llm_in, llm_rx) = pipeline.input::<Work>();
    let limits = models.whisper_options.audio_limits;
    let clips = pipeline.add(decode_audio(counts.clone(), limits), audio_rx);
    let transcripts = pipeline.add(speech(models, counts.clone()), clips);
    let images = pipeline.add(decode_image(counts.clone()), image_rx);
    let contexts = pipeline.add(vision(models, counts.clone()), images);
    let videos = pipeline.add(video(models, counts.clone()), video_rx);
    let done = match (&models.llm, &opts.question) {
        (Some(_), Some(q)) => pipeline.add(llm(models, q.clone(), counts.clone()), llm_rx),
        _ => llm_rx,
    };
    let (ack_tx, ack_rx) = crossbeam_channel::unbounded::<()>();
    let sequential = opts.sequential;
    let result = std::thread::scope(|s| {
        s.spawn(move || merge(vec![transcripts, contexts, videos], llm_in));
        if sequential {
            let mut inputs = (audio_in, image_in, video_in);
            s.spawn(move || {
                for (id, e) in entries.iter().enumerate() {
                    let input = match e.kind {
                        Kind::Audio => &mut inputs.0,
                        Kind::Video => &mut inputs.2,
                        _ => &mut inputs.1,
                    };
                    if stop.load(Ordering::SeqCst) || !feed(input, id, e) {
                        break;
                    }
                    if ack_rx.recv().is_err() {
                        break;
                    }
                }
            });
        } else {
            let inputs = [
                (Kind::Audio, audio_in),
                (Kind::Image, image_in),
                (Kind::Video, video_in),
            ];
            for (kind, mut input) in inputs {
                s.spawn(move || {
                    for (id, e) in entries.iter().enumerate().filter(|(_, e)| e.kind == kind) {
                        if stop.load(Ordering::SeqCst) || !feed(&mut input, id, e) {
                            break;
                        }
                    }
                });
            }
        }
        write_all(done, counts, on_done, tick, &ack_tx)
    });
    let report = pipeline.join();
    result.map(|()| report)
}

fn feed(input: &mut Input<Job>, id: usize, e: &Entry) -> bool {
    let name = e
        .path
        .file_name()
        .map_or_else(|| e.display.clone(), |n| n.to_string_lossy().to_string());
    let job = Job {
        id: id as u64,
        path: e.path.clone(),
        name,
    };
    input.send_with_id(id as u64, job).is_ok()
}

fn write_all(
    done: Receiver<Envelope<Work>>,
    counts: &StageCounts,
    on_done: &mut dyn FnMut(usize, Result<Work, (ItemError, Timings)>) -> crate::Result<()>,
    tick: &mut dyn FnMut(),
    ack: &crossbeam_channel::Sender<()>,
) -> crate::Result<()> {
    loop {
        match done.recv_timeout(Duration::from_millis(200)) {
            Ok(env) => {
                // Dropping `done` on error stops every stage: their sends fail in turn.
                let result = env.result.map_err(|e| (e, counts.take_failed(env.id)));
                on_done(env.id as usize, result)?;
                let _ = ack.send(());
            }
            Err(RecvTimeoutError::Timeout) => tick(),
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}

/// Joins the speech, vision and video outputs into the LLM queue, whichever is ready first.
fn merge(from: Vec<Receiver<Envelope<Work>>>, mut out: Input<Work>) {
    let mut sel = Select::new();
    for rx in &from {
        sel.recv(rx);
    }
    let mut open = from.len();
    while open > 0 {
        let op = sel.select();
        let i = op.index();
        let got = op.recv(&from[i]);
        let sent = match got {
            Ok(env) => match env.result {
                Ok(w) => out.send_with_id(env.id, w),
                Err(e) => out.send_error(env.id, e),
            },
            Err(_) => {
                sel.remove(i);
                open -= 1;
                Ok(())
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

fn timed<T>(timings: &mut Timings, stage: &'static str, f: impl FnOnce() -> T) -> T {
    let started = Instant::now();
    let out = f();
    *timings.entry(stage).or_default() += started.elapsed().as_secs_f64();
    out
}

type Stage<I, O> = FnStage<I, O, Box<dyn FnMut(I) -> Result<O, StageError> + Send>>;

fn decode_audio(
    counts: Arc<StageCounts>,
    limits: percept_media::AudioLimits,
) -> Stage<Job, (Work, AudioClip)> {
    FnStage::new(
        "decode-audio",
        Box::new(move |job: Job| {
            let mut w = Work {
                id: job.id,
                name: job.name,
                ..Work::default()
            };
            let clip = timed(&mut w.timings, "decode", || {
                percept_media::decode_file_with(&job.path, percept_media::SPEECH_RATE, &limits)
            });
            counts.decode.fetch_add(1, Ordering::Relaxed);
            counts.settle(w, clip.map_err(|e| StageError::new(e.to_string())))
        }),
    )
}

fn speech(models: &Models, counts: Arc<StageCounts>) -> Stage<(Work, AudioClip), Work> {
    let whisper = models.whisper.clone();
    let opts = models.whisper_options.clone();
    FnStage::new(
        "speech",
        Box::new(move |(mut w, clip): (Work, AudioClip)| {
            let Some(whisper) = &whisper else {
                return Err(StageError::new("no Whisper model loaded"));
            };
            let t = timed(&mut w.timings, "speech", || {
                lock(whisper).transcribe_clip(&clip, &opts)
            });
            counts.speech.fetch_add(1, Ordering::Relaxed);
            let (mut w, t) = counts.settle(w, t.map_err(|e| StageError::from_error(&e)))?;
            w.results.transcript = Some(t);
            Ok(w)
        }),
    )
}

fn decode_image(counts: Arc<StageCounts>) -> Stage<Job, (Work, DecodedImage)> {
    let opts = ImageOptions::default();
    FnStage::new(
        "decode-image",
        Box::new(move |job: Job| {
            let mut w = Work {
                id: job.id,
                name: job.name,
                ..Work::default()
            };
            let img = timed(&mut w.timings, "decode", || {
                decode_image_file(&job.path, &opts)
            });
            counts.decode.fetch_add(1, Ordering::Relaxed);
            counts.settle(w, img.map_err(|e| StageError::new(e.to_string())))
        }),
    )
}

fn vision(models: &Models, counts: Arc<StageCounts>) -> Stage<(Work, DecodedImage), Work> {
    let clip = models.vision.clone();
    let classifier = models.classifier.clone();
    let ocr = models.ocr.clone();
    let faces = models.faces.clone();
    FnStage::new(
        "vision",
        Box::new(move |(mut w, img): (Work, DecodedImage)| {
            let ctx = timed(&mut w.timings, "vision", || {
                see(
                    clip.as_ref(),
                    classifier.as_ref(),
                    ocr.as_ref(),
                    faces.as_ref(),
                    &img,
                )
            });
            counts.vision.fetch_add(1, Ordering::Relaxed);
            let (mut w, ctx) = counts.settle(w, ctx.map_err(StageError::new))?;
            w.results.tags = Some(ctx.tags);
            w.results.labels = Some(ctx.labels);
            w.results.ocr = ctx.ocr;
            w.results.facts = Some(ctx.facts);
            Ok(w)
        }),
    )
}

/// A whole video: decoded (audio track and sampled frames), its audio transcribed, each frame
/// described, recorded with their times.
fn video(models: &Models, counts: Arc<StageCounts>) -> Stage<Job, Work> {
    let whisper = models.whisper.clone();
    let opts = models.whisper_options.clone();
    let clip = models.vision.clone();
    let classifier = models.classifier.clone();
    let ocr = models.ocr.clone();
    let faces = models.faces.clone();
    let limits = models.video_limits;
    FnStage::new(
        "video",
        Box::new(move |job: Job| {
            let mut w = Work {
                id: job.id,
                name: job.name,
                ..Work::default()
            };
            let decoded = timed(&mut w.timings, "decode", || {
                percept_video::decode_file(&job.path, &limits)
            });
            counts.decode.fetch_add(1, Ordering::Relaxed);
            let (mut w, v) =
                counts.settle(w, decoded.map_err(|e| StageError::new(e.to_string())))?;
            let mut seen = crate::video::VideoSeen::new(&v);
            if let (Some(audio), Some(whisper)) = (&v.audio, &whisper) {
                let t = timed(&mut w.timings, "speech", || {
                    lock(whisper).transcribe_clip(audio, &opts)
                });
                counts.speech.fetch_add(1, Ordering::Relaxed);
                let (w2, t) = counts.settle(w, t.map_err(|e| StageError::from_error(&e)))?;
                w = w2;
                w.results.transcript = Some(t);
            }
            let mut contexts = Vec::new();
            for f in &v.frames {
                let ctx = timed(&mut w.timings, "vision", || {
                    see(
                        clip.as_ref(),
                        classifier.as_ref(),
                        ocr.as_ref(),
                        faces.as_ref(),
                        &f.image,
                    )
                });
                let (w2, ctx) = counts.settle(w, ctx.map_err(StageError::new))?;
                w = w2;
                contexts.push(ctx);
            }
            counts.vision.fetch_add(1, Ordering::Relaxed);
            let times: Vec<(f64, bool)> = v
                .frames
                .iter()
                .map(|f| (f.time_s, f.scene_change))
                .collect();
            seen.add_frames(&contexts, &times);
            w.results.duration_s = Some(seen.duration_s);
            w.results.frames = Some(seen.frames);
            Ok(w)
        }),
    )
}

/// CLIP's tags, the classifier's labels, OCR's text and the faces for one picture (each
/// when loaded).
fn see(
    clip: Option<&Arc<Mutex<percept_clip::VisionStage>>>,
    classifier: Option<&Arc<Mutex<crate::load::Classifier>>>,
    ocr: Option<&crate::load::Ocr>,
    faces: Option<&crate::load::Faces>,
    img: &DecodedImage,
) -> Result<percept_core::VisionContext, String> {
    let mut ctx = match clip {
        Some(stage) => lock(stage).describe(img).map_err(|e| e.to_string())?,
        None => crate::load::facts_only(img),
    };
    if let Some(c) = classifier {
        crate::load::add_labels(&lock(c), img, &mut ctx).map_err(|e| e.to_string())?;
    }
    if let Some(o) = ocr {
        crate::load::add_text(o, img, &mut ctx);
    }
    if let Some(f) = faces {
        crate::load::add_faces(f, img, &mut ctx);
    }
    Ok(ctx)
}

fn llm(models: &Models, question: String, counts: Arc<StageCounts>) -> Stage<Work, Work> {
    let engine = models.llm.clone();
    let params = models.gen.clone();
    let system = models.system.clone();
    FnStage::new(
        "llm",
        Box::new(move |mut w: Work| {
            let Some(engine) = &engine else {
                return Err(StageError::new("no LLM loaded"));
            };
            let prompt = Prompt {
                system: system.clone(),
                history: Vec::new(),
                question: Some(Untrusted {
                    label: "question".to_string(),
                    text: question.clone(),
                }),
                context: context_of(&w),
            };
            let never = AtomicBool::new(false);
            let gen = timed(&mut w.timings, "llm", || {
                answer(&mut lock(engine), &prompt, &params, &never, &mut |_| {})
            });
            counts.llm.fetch_add(1, Ordering::Relaxed);
            let (mut w, gen) = counts.settle(w, gen.map_err(|e| StageError::from_error(&e)))?;
            w.results.answer = Some(gen.text);
            Ok(w)
        }),
    )
}

/// The file's results as untrusted data parts: a transcript, an image description, or a
/// video's timed transcript and frames.
fn context_of(w: &Work) -> Vec<Untrusted> {
    let mut parts = Vec::new();
    if let Some(frames) = &w.results.frames {
        if let Some(t) = &w.results.transcript {
            parts.push(Untrusted {
                label: format!("transcript of {}", crate::video::VIDEO_AUDIO),
                text: crate::video::timed_text(&t.segments),
            });
        }
        parts.extend(frames.iter().map(|f| Untrusted {
            label: percept_video::frame_label(f.time_s),
            text: f.description.clone(),
        }));
        return parts;
    }
    if let Some(t) = &w.results.transcript {
        parts.push(Untrusted {
            label: format!("transcript of {}", w.name),
            text: t.text.trim().to_string(),
        });
    }
    if let Some(f) = &w.results.facts {
        let mut text = percept_core::describe_image(
            f,
            w.results.tags.as_deref().unwrap_or_default(),
            w.results.labels.as_deref().unwrap_or_default(),
        );
        if let Some(ocr) = &w.results.ocr {
            text = format!("{text}\n{}", percept_core::describe_text(ocr));
        }
        parts.push(Untrusted {
            label: format!("image {}", w.name),
            text,
        });
    }
    parts
}
