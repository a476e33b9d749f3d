//! The models a batch needs, loaded once and shared by the stage closures (and by both runs
//! of `bench pipeline`). Each sits behind a mutex only so it can move between runs; within a
//! run exactly one stage thread uses it.

use crate::cmd::ask::LlmArgs;
use crate::cmd::tag::{cache_dir, load_clip, missing_weights_line};
use anyhow::Context;
use percept_clip::labels::{parse_vocabulary, BUNDLED_LABELS};
use percept_clip::{LabelSet, VisionStage, TEMPLATES};
use percept_llm::{Engine, GenParams};
use percept_whisper::{Device, Options, Whisper};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Which models to load and how to run them.
#[derive(Debug, Clone)]
pub struct ModelChoice {
    pub whisper: String,
    pub clip_dir: Option<PathBuf>,
    pub tags: usize,
    pub llm: LlmArgs,
    pub whisper_options: Options,
}

pub type Shared<T> = Arc<Mutex<T>>;

#[derive(Clone)]
pub struct Models {
    pub whisper: Option<Shared<Whisper>>,
    pub whisper_options: Options,
    /// None for images when CLIP weights are absent: tags are left empty, facts still come.
    pub vision: Option<Shared<VisionStage>>,
    pub llm: Option<Shared<Engine>>,
    pub gen: GenParams,
    pub system: Option<String>,
}

/// Loads only what the files and the question call for.
pub fn load(
    choice: &ModelChoice,
    need_audio: bool,
    need_image: bool,
    question: bool,
) -> anyhow::Result<Models> {
    let whisper = if need_audio {
        let dir = percept_models::locate(&choice.whisper)?;
        let w = Whisper::load(&dir, &Device::Cpu)
            .with_context(|| format!("loading Whisper from {}", dir.display()))?;
        Some(Arc::new(Mutex::new(w)))
    } else {
        None
    };
    let vision = if need_image {
        match load_clip(choice.clip_dir.as_deref())? {
            Some(clip) => {
                let labels = parse_vocabulary(BUNDLED_LABELS);
                let (set, _) =
                    LabelSet::load_or_build(&clip, &labels, &TEMPLATES, &cache_dir(None))?;
                let stage = VisionStage::new(clip, set, choice.tags).without_embedding();
                Some(Arc::new(Mutex::new(stage)))
            }
            None => {
                eprintln!(
                    "percept: semantic tags unavailable: {} (using image facts only)",
                    missing_weights_line()
                );
                None
            }
        }
    } else {
        None
    };
    let llm = if question {
        Some(Arc::new(Mutex::new(choice.llm.load()?)))
    } else {
        None
    };
    Ok(Models {
        whisper,
        whisper_options: choice.whisper_options.clone(),
        vision,
        llm,
        gen: choice.llm.gen_params(),
        system: choice.llm.system.clone(),
    })
}

/// Locks a model; a stage that panicked mid-item leaves it usable (the runner reports it).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
