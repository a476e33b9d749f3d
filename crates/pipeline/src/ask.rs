//! The ask session: a question (typed or spoken) plus images, through the three stages.
//!
//! It runs on a [`Service`], the same stage threads the server sends its requests to: speech
//! and vision at the same time (the image is encoded while the question is transcribed),
//! their results into the prompt by [`crate::prompt`]'s rule, and the LLM stage's deltas to
//! the caller while it decodes.

use crate::def::PipelineDef;
use crate::error::{PipelineError, Result};
use crate::load::Stages;
use crate::probe;
use crate::service::{Media, Prepared, Question, Service};
use crate::video::{label_parts, video_limits, video_media, VideoSeen, VIDEO_AUDIO};
use percept_core::{AnswerEvent, FinishReason, StageMetrics, Transcript, VisionContext};
use percept_llm::Generation;
use serde::Serialize;
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
    /// A video to ask about: its audio track is transcribed and its sampled frames are
    /// described, all as data beside the (typed or spoken) question.
    pub video: Option<PathBuf>,
    /// Question-guided probing, when the definition enables it and CLIP is loaded.
    pub probe: bool,
    /// Texts that end the answer.
    pub stop: Vec<String>,
}

impl AskRequest {
    /// A request needs words to answer: typed, or spoken in `audio`.
    pub fn validate(&self) -> Result<()> {
        if self.question.is_none() && self.audio.is_none() {
            return Err(PipelineError::invalid(
                "give a question, as text or with --audio FILE",
            ));
        }
        Ok(())
    }

    /// The stages this request needs.
    pub fn need(&self) -> crate::Need {
        crate::Need {
            speech: self.audio.is_some() || self.video.is_some(),
            vision: !self.images.is_empty() || self.video.is_some(),
            llm: true,
        }
    }
}

/// What the stages produced, and the answer.
#[derive(Debug, Serialize)]
pub struct AskOutcome {
    /// The LLM's file (set by [`ask`], which loads it).
    pub model: Option<String>,
    pub transcript: Option<Transcript>,
    pub images: Vec<VisionContext>,
    /// Images that could not be read, each naming its file; the others were still used.
    pub errors: Vec<String>,
    pub probes: Vec<probe::ImageProbe>,
    /// The words that went in as the user's turn (typed, or spoken with nothing typed).
    pub user_turn: Option<String>,
    /// The labels of the parts fenced as data (transcripts of clips, images, probes).
    pub data_parts: Vec<String>,
    /// The video's transcript and frames with their times (with `video`).
    pub video: Option<VideoSeen>,
    /// Reported flat, with its times in ms, by [`AskReport`].
    #[serde(skip)]
    pub generation: Generation,
    pub stages: Vec<StageMetrics>,
}

/// `percept ask --json`'s object: the question, what the stages saw, and the answer with its
/// token counts and times.
#[derive(Debug, Serialize)]
pub struct AskReport<'a> {
    pub question: Option<&'a str>,
    #[serde(flatten)]
    pub outcome: &'a AskOutcome,
    pub answer: &'a str,
    pub finish: FinishReason,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub untrusted_tokens: usize,
    pub control_tokens_in_untrusted: usize,
    pub prefill_ms: f64,
    pub decode_ms: f64,
}

impl AskOutcome {
    /// The report of this outcome for `question` (the typed words, if any).
    pub fn report<'a>(&'a self, question: Option<&'a str>) -> AskReport<'a> {
        let g = &self.generation;
        AskReport {
            question,
            outcome: self,
            answer: &g.text,
            finish: g.finish,
            prompt_tokens: g.prompt_tokens,
            completion_tokens: g.completion_tokens,
            untrusted_tokens: g.untrusted_tokens,
            control_tokens_in_untrusted: g.control_tokens_in_untrusted,
            prefill_ms: g.prefill_time.as_secs_f64() * 1e3,
            decode_ms: g.decode_time.as_secs_f64() * 1e3,
        }
    }
}

/// Runs one question through `stages` (loaded for [`AskRequest::need`]) on their own stage
/// threads. `cancel` stops the answer; `on_delta` sees each piece of it as it is decoded.
pub fn ask(
    stages: Stages,
    def: &PipelineDef,
    req: &AskRequest,
    cancel: Arc<AtomicBool>,
    on_delta: &mut dyn FnMut(&str),
) -> Result<AskOutcome> {
    let model = stages
        .llm
        .as_ref()
        .map(|l| l.engine.path.display().to_string());
    let service = Service::start(stages, def.runtime.channel_capacity, None);
    let outcome = ask_with(&service, def, req, cancel, on_delta);
    let stages = service.finish();
    outcome.map(|o| AskOutcome { model, stages, ..o })
}

/// [`ask`] on a running [`Service`] (its `model` and `stages` fields are left empty).
pub fn ask_with(
    service: &Service,
    def: &PipelineDef,
    req: &AskRequest,
    cancel: Arc<AtomicBool>,
    on_delta: &mut dyn FnMut(&str),
) -> Result<AskOutcome> {
    req.validate()?;
    let video = match &req.video {
        Some(path) => {
            let limits = video_limits(def, percept_video::VideoLimits::CLI);
            let video = percept_video::decode_file(path, &limits)
                .map_err(|e| PipelineError::invalid(e.to_string()))?;
            Some(video)
        }
        None => None,
    };
    let mut seen = video.as_ref().map(VideoSeen::new);
    let times: Vec<(f64, bool)> = video
        .iter()
        .flat_map(|v| v.frames.iter().map(|f| (f.time_s, f.scene_change)))
        .collect();
    let (video_audio, frames) = video.map(video_media).unwrap_or_default();
    let question = Question {
        system: def.system.clone(),
        history: Vec::new(),
        typed: req.question.clone(),
        audio: req
            .audio
            .iter()
            .map(Media::file)
            .chain(video_audio)
            .collect(),
        images: req.images.iter().map(Media::file).chain(frames).collect(),
    };
    let prepared = service.prepare(question, &service.speech_options)?;
    let Prepared {
        mut prompt,
        transcripts,
        mut images,
        image_errors,
    } = prepared;
    if let Some(seen) = &mut seen {
        let heard = transcripts.iter().find(|t| t.source == VIDEO_AUDIO);
        label_parts(&mut prompt, &images, heard);
        seen.transcript = heard.cloned();
        seen.add_frames(&images, &times);
    }

    let mut probes = Vec::new();
    let probing = req.probe && def.probing() && service.loaded.clip.is_some();
    if let (true, Some(q)) = (probing && !images.is_empty(), prompt.question.clone()) {
        let n = def.probe.candidates;
        let mut params = def.gen_params();
        params.max_tokens = 24 * n;
        let reply = service.generate(
            probe::candidates_prompt(&q, &prompt.context, n),
            params,
            cancel.clone(),
            &mut |_| {},
        )?;
        let candidates = probe::parse_candidates(&reply.text, n);
        probes = service.probe(images.clone(), candidates)?;
        let many = probes.len() > 1;
        let parts = probes.iter().enumerate();
        prompt
            .context
            .extend(parts.map(|(i, p)| probe::describe(p, many.then_some(i + 1))));
    }
    for img in &mut images {
        img.embedding = None;
    }
    let user_turn = prompt.question.as_ref().map(|q| q.text.clone());
    let data_parts = prompt.context.iter().map(|c| c.label.clone()).collect();
    let mut params = def.gen_params();
    params.stop = req.stop.clone();
    let generation = service.generate(prompt, params, cancel, &mut |ev| {
        if let AnswerEvent::Delta { text } = &ev {
            on_delta(text);
        }
    })?;
    Ok(AskOutcome {
        model: None,
        transcript: transcripts.into_iter().next(),
        images,
        errors: image_errors.iter().map(|e| e.to_string()).collect(),
        probes,
        user_turn,
        data_parts,
        video: seen,
        generation,
        stages: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_report_has_every_key_ask_json_prints() {
        let outcome = AskOutcome {
            model: Some("m.gguf".into()),
            transcript: None,
            images: Vec::new(),
            errors: Vec::new(),
            probes: Vec::new(),
            user_turn: Some("hi".into()),
            data_parts: Vec::new(),
            video: None,
            generation: Generation {
                text: "hello".into(),
                finish: FinishReason::Stop,
                prompt_tokens: 7,
                completion_tokens: 2,
                reused_tokens: 0,
                untrusted_tokens: 0,
                control_tokens_in_untrusted: 0,
                prefill_time: Duration::from_millis(30),
                decode_time: Duration::from_millis(20),
            },
            stages: Vec::new(),
        };
        let v = serde_json::to_value(outcome.report(Some("hi"))).expect("json");
        let mut keys: Vec<&str> = v
            .as_object()
            .expect("object")
            .keys()
            .map(|k| k.as_str())
            .collect();
        keys.sort_unstable();
        let want = [
            "answer",
            "completion_tokens",
            "control_tokens_in_untrusted",
            "data_parts",
            "decode_ms",
            "errors",
            "finish",
            "images",
            "model",
            "prefill_ms",
            "probes",
            "prompt_tokens",
            "question",
            "stages",
            "transcript",
            "untrusted_tokens",
            "user_turn",
            "video",
        ];
        assert_eq!(keys, want);
        assert_eq!(v["answer"], "hello");
        assert_eq!(v["finish"], "stop");
        assert_eq!(v["prefill_ms"], 30.0);
    }
}
