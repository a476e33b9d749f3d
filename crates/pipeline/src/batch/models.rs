//! The models a batch needs, loaded once and shared by the stage closures (and by both runs
//! of `bench pipeline`). Each sits behind a mutex only so it can move between runs; within a
//! run exactly one stage thread uses it.

use crate::def::PipelineDef;
use crate::error::Result;
use crate::load::{load_stages, Need};
use percept_clip::VisionStage;
use percept_llm::{Engine, GenParams};
use percept_whisper::{Options, Whisper};
use std::sync::{Arc, Mutex};

pub type Shared<T> = Arc<Mutex<T>>;

#[derive(Clone)]
pub struct Models {
    pub whisper: Option<Shared<Whisper>>,
    pub whisper_options: Options,
    pub video_limits: percept_video::VideoLimits,
    /// None for images when CLIP weights are absent: tags are left empty, facts still come.
    pub vision: Option<Shared<VisionStage>>,
    /// The ImageNet classifier, on every image when its weights are here.
    pub classifier: Option<Shared<crate::load::Classifier>>,
    /// OCR, on every image when Tesseract is installed (each read is its own process).
    pub ocr: Option<crate::load::Ocr>,
    /// Faces, on every image when OpenCV's cascade is installed.
    pub faces: Option<crate::load::Faces>,
    pub llm: Option<Shared<Engine>>,
    pub gen: GenParams,
    pub system: Option<String>,
}

/// Loads only what the files and the question call for; returns the notices for the person.
pub fn load(
    def: &PipelineDef,
    need_audio: bool,
    need_image: bool,
    question: bool,
) -> Result<(Models, Vec<String>)> {
    let need = Need {
        speech: need_audio,
        vision: need_image,
        llm: question,
    };
    let stages = load_stages(def, need)?;
    let shared = |t| Arc::new(Mutex::new(t));
    let models = Models {
        whisper: stages.speech.map(|s| shared(s.whisper)),
        whisper_options: def.whisper_options(),
        video_limits: crate::video::video_limits(def, percept_video::VideoLimits::CLI),
        vision: stages
            .vision
            .map(|v| Arc::new(Mutex::new(v.stage.without_embedding()))),
        classifier: stages.classifier.map(|c| Arc::new(Mutex::new(c))),
        ocr: stages.ocr,
        faces: stages.faces,
        llm: stages.llm.map(|l| Arc::new(Mutex::new(l.engine))),
        gen: def.gen_params(),
        system: def.system.clone(),
    };
    Ok((models, stages.notices))
}

/// Locks a model; a stage that panicked mid-item leaves it usable (the runner reports it).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
