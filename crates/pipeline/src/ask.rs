//! The ask session: a question (typed or spoken) plus images, through the three stages.
//!
//! Speech and vision run on their own threads at the same time (the image is encoded while
//! the question is transcribed); their results enter the prompt by [`crate::prompt`]'s rule,
//! and the LLM stage's deltas reach the caller while it decodes.

use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use crate::load::{add_labels, facts_only, Stages};
use crate::probe;
use crate::prompt::question_prompt;
use percept_core::{
    AnswerEvent, AudioClip, DecodedImage, FnStage, ItemError, Pipeline, StageMetrics, Transcript,
    VisionContext,
};
use percept_llm::{Generation, LlmRequest, LlmStage};
use percept_media::image::{decode_image_file, ImageOptions};
use percept_whisper::SpeechStage;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// One question.
#[derive(Debug, Clone, Default)]
pub struct AskRequest {
    /// Typed words; without them the spoken `audio` is the question.
    pub question: Option<String>,
    /// A spoken question (any audio format), or a clip to ask about beside a typed question.
    pub audio: Option<PathBuf>,
    pub images: Vec<PathBuf>,
    /// Question-guided probing, when the definition enables it and CLIP is loaded.
    pub probe: bool,
    /// Texts that end the answer.
    pub stop: Vec<String>,
}

impl AskRequest {
    /// The stages this request needs.
    pub fn need(&self) -> crate::Need {
        crate::Need {
            speech: self.audio.is_some(),
            vision: !self.images.is_empty(),
            llm: true,
        }
    }
}

/// What the stages produced, and the answer.
#[derive(Debug, serde::Serialize)]
pub struct AskOutcome {
    pub transcript: Option<Transcript>,
    pub images: Vec<VisionContext>,
    /// Images that could not be read, each naming its file; the others were still used.
    pub errors: Vec<String>,
    pub probes: Vec<probe::ImageProbe>,
    /// The words that went in as the user's turn (typed, or spoken with nothing typed).
    pub user_turn: Option<String>,
    /// The labels of the parts fenced as data (transcripts of clips, images, probes).
    pub data_parts: Vec<String>,
    pub generation: Generation,
    pub stages: Vec<StageMetrics>,
}

/// Runs one question through `stages` (loaded for [`AskRequest::need`]). `cancel` stops the
/// answer; `on_delta` sees each piece of it as it is decoded.
pub fn ask(
    stages: Stages,
    def: &PipelineDef,
    req: &AskRequest,
    cancel: Arc<AtomicBool>,
    on_delta: &mut dyn FnMut(&str),
) -> Result<AskOutcome> {
    if req.question.is_none() && req.audio.is_none() {
        return Err(PipelineError::invalid(
            "give a question, as text or with --audio FILE",
        ));
    }
    let Stages {
        speech,
        vision,
        classifier,
        llm,
        notices: _,
    } = stages;
    let llm = llm.ok_or_else(|| PipelineError::invalid("ask needs the LLM stage loaded"))?;
    let probing = req.probe && def.probing();
    let vision = vision.map(|v| {
        Arc::new(if probing {
            v.stage
        } else {
            v.stage.without_embedding()
        })
    });

    let mut pipeline = Pipeline::new(def.runtime.channel_capacity);
    let (mut audio_in, audio_rx) = pipeline.input::<AudioClip>();
    let (mut image_in, image_rx) = pipeline.input::<DecodedImage>();
    let (mut llm_in, llm_rx) = pipeline.input::<LlmRequest>();
    let transcripts = speech.map(|s| {
        let stage = SpeechStage {
            whisper: s.whisper,
            options: s.options,
        };
        pipeline.add(stage, audio_rx)
    });
    let scorer = vision.clone().filter(|_| probing);
    let contexts = pipeline.add(
        FnStage::new("vision", move |img: DecodedImage| {
            let mut ctx = match &vision {
                Some(stage) => stage.describe(&img).map_err(|e| e.to_string())?,
                None => facts_only(&img),
            };
            if let Some(c) = &classifier {
                add_labels(c, &img, &mut ctx).map_err(|e| e.to_string())?;
            }
            Ok(ctx)
        }),
        image_rx,
    );
    let answers = pipeline.add(LlmStage::new(llm.engine), llm_rx);
    let stopped = || PipelineError::invalid("a stage stopped before answering");

    if let Some(path) = &req.audio {
        let limits = def.audio_limits(percept_media::AudioLimits::CLI);
        let clip = percept_media::decode_file_with(path, percept_media::SPEECH_RATE, &limits)?;
        audio_in.send(clip).map_err(|_| stopped())?;
    }
    drop(audio_in);
    let opts = ImageOptions::default();
    for (i, path) in req.images.iter().enumerate() {
        let sent = match decode_image_file(path, &opts) {
            Ok(img) => image_in.send_with_id(i as u64, img),
            Err(e) => image_in.send_error(
                i as u64,
                ItemError {
                    stage: "decode".into(),
                    message: e.to_string(),
                },
            ),
        };
        sent.map_err(|_| stopped())?;
    }
    drop(image_in);

    let mut transcript = None;
    if let Some(rx) = transcripts {
        for env in rx {
            match env.result {
                Ok(t) => transcript = Some(t),
                Err(e) => return Err(PipelineError::stage("transcribing the question", e)),
            }
        }
    }
    let mut images = Vec::new();
    let mut errors = Vec::new();
    for env in contexts {
        match env.result {
            Ok(ctx) => images.push(ctx),
            Err(e) => errors.push(e.to_string()),
        }
    }

    let spoken: Vec<Transcript> = transcript.iter().cloned().collect();
    let mut prompt = question_prompt(
        def.system.clone(),
        Vec::new(),
        req.question.as_deref(),
        &spoken,
        &images,
    );
    let mut probes = Vec::new();
    if let (Some(stage), Some(q)) = (&scorer, prompt.question.clone()) {
        let n = def.probe.candidates;
        let mut request = LlmRequest::new(probe::candidates_prompt(&q, &prompt.context, n));
        request.params = def.gen_params();
        request.params.max_tokens = 24 * n;
        request.cancel = Some(cancel.clone());
        llm_in.send(request).map_err(|_| stopped())?;
        let reply = answers.recv().map_err(|_| stopped())?.result;
        let candidates = match reply {
            Ok(g) => probe::parse_candidates(&g.text, n),
            Err(e) => return Err(PipelineError::stage("probing", e)),
        };
        probes = probe::probe_images(stage.clip(), &images, &candidates)?;
        prompt.context.extend(probes.iter().map(probe::describe));
    }
    for img in &mut images {
        img.embedding = None;
    }
    let user_turn = prompt.question.as_ref().map(|q| q.text.clone());
    let data_parts = prompt.context.iter().map(|c| c.label.clone()).collect();
    let (tx, events) = crossbeam_channel::unbounded();
    let mut request = LlmRequest::new(prompt);
    request.params = def.gen_params();
    request.params.stop = req.stop.clone();
    request.events = Some(tx);
    request.cancel = Some(cancel);
    llm_in.send(request).map_err(|_| stopped())?;
    drop(llm_in);
    for ev in events {
        if let AnswerEvent::Delta { text } = &ev {
            on_delta(text);
        }
    }
    let generation = answers
        .recv()
        .map_err(|_| stopped())?
        .result
        .map_err(|e| PipelineError::stage("answering", e))?;
    let stages = pipeline.join().stages;
    Ok(AskOutcome {
        transcript,
        images,
        errors,
        probes,
        user_turn,
        data_parts,
        generation,
        stages,
    })
}
