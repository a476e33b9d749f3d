//! `percept ask --image F --audio F`: the three stages wired by core's runner.
//!
//! Speech and vision run on their own threads at the same time (the image is encoded while
//! the question is transcribed); their results become untrusted prompt parts for the LLM
//! stage, whose deltas stream to stdout while it decodes.

use super::ask::LlmArgs;
use super::tag::{cache_dir, facts_only, load_clip, missing_weights_line};
use crate::pipelines::PipelineDef;
use crate::probe;
use anyhow::{bail, Context};
use percept_clip::labels::{parse_vocabulary, BUNDLED_LABELS};
use percept_clip::{LabelSet, VisionStage, TEMPLATES};
use percept_core::{
    AnswerEvent, AudioClip, DecodedImage, FnStage, ItemError, Pipeline, Prompt, Transcript,
    Untrusted, VisionContext,
};
use percept_llm::{LlmRequest, LlmStage};
use percept_media::image::{decode_image_file, ImageOptions};
use percept_whisper::{Device, Options, SpeechStage, Whisper};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const DEFAULT_WHISPER: &str = "whisper-tiny.en";

/// Media inputs of `ask`.
#[derive(Debug, Clone, clap::Args)]
pub struct MediaArgs {
    /// An image to ask about (repeatable).
    #[arg(long = "image", value_name = "FILE")]
    pub images: Vec<PathBuf>,
    /// A spoken question (any audio format); transcribed by Whisper.
    #[arg(long, value_name = "FILE")]
    pub audio: Option<PathBuf>,
    /// Whisper model id or directory for `--audio`.
    #[arg(long, default_value = DEFAULT_WHISPER)]
    pub whisper: String,
    /// CLIP model folder; default: the store's clip-vit-base-patch32 when present.
    #[arg(long, value_name = "DIR")]
    pub clip_dir: Option<PathBuf>,
    /// Tags per image.
    #[arg(long, default_value_t = 5)]
    pub tags: usize,
    /// Skip question-guided probing (the LLM's candidate answers scored by CLIP).
    #[arg(long)]
    pub no_probe: bool,
}

impl MediaArgs {
    pub fn is_empty(&self) -> bool {
        self.images.is_empty() && self.audio.is_none()
    }
}

/// What the media stages produced for one `ask`.
#[derive(Debug, Default, serde::Serialize)]
pub struct MediaResult {
    pub transcript: Option<Transcript>,
    pub images: Vec<VisionContext>,
    pub errors: Vec<String>,
    pub probes: Vec<probe::ImageProbe>,
    pub stages: Vec<percept_core::StageMetrics>,
}

pub fn run(
    question: Option<String>,
    media: &MediaArgs,
    llm: &LlmArgs,
    json: bool,
    def: &PipelineDef,
) -> anyhow::Result<()> {
    if question.is_none() && media.audio.is_none() {
        bail!("give a question, as text or with --audio FILE");
    }
    // Ctrl-C, from the start (loading takes seconds): the LLM request carries the flag, so
    // the answer stops (or never starts) and what is done so far prints. All media items are
    // sent before the answer begins, so nothing else needs stopping.
    let cancel = Arc::new(AtomicBool::new(false));
    {
        let cancel = cancel.clone();
        ctrlc::set_handler(move || cancel.store(true, Ordering::SeqCst))
            .context("installing the Ctrl-C handler")?;
    }
    let speech = match &media.audio {
        Some(_) => {
            let dir = percept_models::locate(&media.whisper)?;
            let whisper = Whisper::load(&dir, &Device::Cpu)
                .with_context(|| format!("loading Whisper from {}", dir.display()))?;
            let options = Options {
                beam_size: def.speech.beam.unwrap_or(1).max(1),
                language: def.speech.language.clone(),
                trim_short_window: def.speech.short_window.unwrap_or(false),
                ..Options::default()
            };
            Some(SpeechStage { whisper, options })
        }
        None => None,
    };
    let probing = def.probe.enabled && !media.no_probe && def.probe.candidates > 0;
    let vision = if media.images.is_empty() {
        None
    } else {
        match load_clip(media.clip_dir.as_deref())? {
            Some(clip) => {
                let labels = parse_vocabulary(BUNDLED_LABELS);
                let cache = cache_dir(None);
                let (set, _) = LabelSet::load_or_build(&clip, &labels, &TEMPLATES, &cache)?;
                let stage = VisionStage::new(clip, set, media.tags);
                Some(Arc::new(if probing {
                    stage
                } else {
                    stage.without_embedding()
                }))
            }
            None => {
                eprintln!(
                    "percept: semantic tags unavailable: {} (using image facts only)",
                    missing_weights_line()
                );
                None
            }
        }
    };
    let engine = llm.load()?;

    let mut pipeline = Pipeline::new(def.runtime.channel_capacity);
    let (mut audio_in, audio_rx) = pipeline.input::<AudioClip>();
    let (mut image_in, image_rx) = pipeline.input::<DecodedImage>();
    let (mut llm_in, llm_rx) = pipeline.input::<LlmRequest>();
    let transcripts = speech.map(|s| pipeline.add(s, audio_rx));
    let scorer = vision.clone().filter(|_| probing);
    let contexts = pipeline.add(
        FnStage::new("vision", move |img: DecodedImage| match &vision {
            Some(stage) => stage.describe(&img).map_err(|e| e.to_string().into()),
            None => Ok(facts_only(&img)),
        }),
        image_rx,
    );
    let answers = pipeline.add(LlmStage::new(engine), llm_rx);
    let mut result = MediaResult::default();
    if let Some(path) = &media.audio {
        match percept_media::decode_file(path, percept_media::SPEECH_RATE) {
            Ok(clip) => {
                audio_in.send(clip)?;
            }
            Err(e) => bail!("{e}"),
        }
    }
    drop(audio_in);
    let opts = ImageOptions::default();
    for (i, path) in media.images.iter().enumerate() {
        match decode_image_file(path, &opts) {
            Ok(img) => image_in.send_with_id(i as u64, img)?,
            Err(e) => image_in.send_error(i as u64, item_error("decode", e))?,
        }
    }
    drop(image_in);

    if let Some(rx) = transcripts {
        for env in rx {
            match env.result {
                Ok(t) => result.transcript = Some(t),
                Err(e) => bail!("transcribing the question: {e}"),
            }
        }
    }
    for env in contexts {
        match env.result {
            Ok(ctx) => result.images.push(ctx),
            Err(e) => {
                eprintln!("percept: {e}");
                result.errors.push(e.to_string());
            }
        }
    }

    let mut prompt = build_prompt(question.as_deref(), media, &result, llm.system.clone());
    if let (Some(stage), Some(q)) = (&scorer, prompt.question.clone()) {
        let n = def.probe.candidates;
        let ask = probe::candidates_prompt(&q, &prompt.context, n);
        let mut request = LlmRequest::new(ask);
        request.params = llm.gen_params();
        request.params.max_tokens = 24 * n;
        request.cancel = Some(cancel.clone());
        llm_in.send(request)?;
        let reply = answers.recv().context("the LLM stage stopped")?.result;
        let candidates = match reply {
            Ok(g) => probe::parse_candidates(&g.text, n),
            Err(e) => bail!("probing: {e}"),
        };
        result.probes = probe::probe_images(stage.clip(), &result.images, &candidates)?;
        prompt
            .context
            .extend(result.probes.iter().map(probe::describe));
    }
    for img in &mut result.images {
        img.embedding = None;
    }
    let (tx, events) = crossbeam_channel::unbounded();
    let mut request = LlmRequest::new(prompt);
    request.params = llm.gen_params();
    request.events = Some(tx);
    request.cancel = Some(cancel);
    llm_in.send(request)?;
    drop(llm_in);
    let mut out = std::io::stdout().lock();
    for ev in events {
        if let (false, AnswerEvent::Delta { text }) = (json, &ev) {
            out.write_all(text.as_bytes())?;
            out.flush()?;
        }
    }
    let generation = answers
        .recv()
        .context("the LLM stage stopped")?
        .result
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    result.stages = pipeline.join().stages;
    if json {
        let v = serde_json::json!({
            "question": question,
            "transcript": result.transcript,
            "images": result.images,
            "errors": result.errors,
            "probes": result.probes,
            "answer": generation.text,
            "finish": generation.finish,
            "prompt_tokens": generation.prompt_tokens,
            "completion_tokens": generation.completion_tokens,
            "untrusted_tokens": generation.untrusted_tokens,
            "control_tokens_in_untrusted": generation.control_tokens_in_untrusted,
            "stages": result.stages,
        });
        writeln!(out, "{v}")?;
    } else {
        writeln!(out)?;
    }
    Ok(())
}

fn item_error(stage: &str, e: impl std::fmt::Display) -> ItemError {
    ItemError {
        stage: stage.to_string(),
        message: e.to_string(),
    }
}

/// Everything that came from media is untrusted: the spoken question and each image's
/// description go in as data parts, never as instructions.
fn build_prompt(
    question: Option<&str>,
    media: &MediaArgs,
    result: &MediaResult,
    system: Option<String>,
) -> Prompt {
    let spoken = result.transcript.as_ref().map(|t| Untrusted {
        label: format!(
            "spoken question (transcript of {})",
            media
                .audio
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        text: t.text.trim().to_string(),
    });
    let typed = question.map(|q| Untrusted {
        label: "question".to_string(),
        text: q.to_string(),
    });
    let (question, mut context) = match (typed, spoken) {
        (Some(q), Some(s)) => (Some(q), vec![s]),
        (q, s) => (q.or(s), Vec::new()),
    };
    context.extend(result.images.iter().map(describe_image));
    Prompt {
        system,
        history: Vec::new(),
        question,
        context,
    }
}

fn describe_image(ctx: &VisionContext) -> Untrusted {
    let name = std::path::Path::new(&ctx.source)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| ctx.source.clone());
    Untrusted {
        label: format!("image {name}"),
        text: ctx.describe(),
    }
}
