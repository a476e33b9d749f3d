//! The one stage loader: a pipeline definition in, the stages it needs out, each on the
//! device the definition names. Nothing else in percept loads a model.

use crate::def::{PipelineDef, StageKind};
use crate::error::{PipelineError, Result};
use percept_clip::cache::default_cache_dir;
use percept_clip::labels::{parse_vocabulary, CacheStatus, BUNDLED_LABELS};
use percept_clip::{Clip, ClipError, LabelSet, VisionStage, TEMPLATES};
use percept_core::{DecodedImage, VisionContext};
use percept_llm::{Engine, LoadOptions};
use percept_whisper::{Options, Whisper};
use std::path::{Path, PathBuf};

/// Which stages a command needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Need {
    pub speech: bool,
    pub vision: bool,
    pub llm: bool,
}

impl Need {
    /// Every stage: the server, which answers any kind of request.
    pub const ALL: Need = Need {
        speech: true,
        vision: true,
        llm: true,
    };
}

/// Whisper with the definition's decoding options.
pub struct Speech {
    pub whisper: Whisper,
    pub options: Options,
    /// The store id or directory it came from.
    pub id: String,
}

/// CLIP with its label embeddings; `None` in [`Stages::vision`] means no weights here, and
/// images are described by their facts only.
pub struct Vision {
    pub stage: VisionStage,
    pub id: String,
    pub labels_cache: CacheStatus,
}

pub struct Llm {
    pub engine: Engine,
    pub id: String,
}

/// The ImageNet classifier: runs on every image whatever else is present, so an image is
/// never described by its file facts alone on a machine with only the default models.
pub type Classifier = percept_classify::Classifier;

/// OCR (the system's Tesseract): runs on every image beside the classifier when installed.
pub type Ocr = percept_ocr::Ocr;

/// The frontal-face detector (OpenCV's cascade from Debian's opencv-data): runs on every
/// image when installed, because the classifier has no class for a person.
pub type Faces = std::sync::Arc<percept_faces::Cascade>;

/// What [`load_stages`] loaded, plus lines a front end should show the person (a missing
/// CLIP model, a template warning).
#[derive(Default)]
pub struct Stages {
    pub speech: Option<Speech>,
    pub vision: Option<Vision>,
    /// Loaded with the vision stage when its weights are here.
    pub classifier: Option<Classifier>,
    /// Started with the vision stage when Tesseract is installed.
    pub ocr: Option<Ocr>,
    /// Loaded with the vision stage when OpenCV's face cascade is installed.
    pub faces: Option<Faces>,
    pub llm: Option<Llm>,
    pub notices: Vec<String>,
}

/// Labels and their embedding cache for the vision stage.
#[derive(Debug, Clone, Default)]
pub struct LabelChoice {
    /// Default: the bundled vocabulary.
    pub labels: Option<Vec<String>>,
    /// Default: `$PERCEPT_CACHE_DIR` or `~/.cache/percept`.
    pub cache_dir: Option<PathBuf>,
}

/// Loads the stages `need` asks for, each on its device.
pub fn load_stages(def: &PipelineDef, need: Need) -> Result<Stages> {
    let speech = need.speech.then(|| load_speech(def)).transpose()?;
    let mut stages = if need.vision {
        load_vision_stages(def, &LabelChoice::default())?
    } else {
        Stages::default()
    };
    stages.speech = speech;
    if need.llm {
        let llm = load_llm(def)?;
        if let Some(w) = &llm.engine.template.warning {
            stages.notices.push(format!("warning: {w}"));
        }
        stages.llm = Some(llm);
    }
    Ok(stages)
}

/// Every vision stage that is here: CLIP with `labels` when its weights are, the ImageNet
/// classifier, and OCR when Tesseract is installed; each one missing is a notice.
pub fn load_vision_stages(def: &PipelineDef, labels: &LabelChoice) -> Result<Stages> {
    let mut stages = Stages::default();
    match load_vision(def, labels)? {
        Some(v) => stages.vision = Some(v),
        None => stages.notices.push(format!(
            "semantic tags unavailable: {} (open-vocabulary CLIP tags are off; the ImageNet \
             classifier and the image facts remain)",
            missing_clip_line()
        )),
    }
    match load_classifier(def) {
        Ok(c) => stages.classifier = Some(c),
        Err(e) => stages
            .notices
            .push(format!("ImageNet labels unavailable: {e}")),
    }
    match load_ocr() {
        Ok(o) => stages.ocr = Some(o),
        Err(e) => stages.notices.push(e.to_string()),
    }
    match percept_faces::load() {
        Ok(f) => stages.faces = Some(std::sync::Arc::new(f)),
        Err(e) => stages.notices.push(e.to_string()),
    }
    Ok(stages)
}

/// A label vocabulary, one label per line, from `path` or the bundled list.
pub fn read_labels(path: Option<&Path>) -> Result<Vec<String>> {
    let text = match path {
        Some(p) => std::fs::read_to_string(p)
            .map_err(|e| PipelineError::invalid(format!("reading {}: {e}", p.display())))?,
        None => BUNDLED_LABELS.to_string(),
    };
    let labels = parse_vocabulary(&text);
    if labels.is_empty() {
        return Err(PipelineError::invalid("the label vocabulary is empty"));
    }
    Ok(labels)
}

pub fn load_speech(def: &PipelineDef) -> Result<Speech> {
    let device = def.device_spec(StageKind::Speech)?.open()?;
    let dir = percept_models::locate(&def.whisper)?;
    let precision = def.speech.precision.unwrap_or_default();
    let whisper = Whisper::load_with(&dir, &device, precision)
        .map_err(|e| PipelineError::stage(format!("loading Whisper from {}", dir.display()), e))?;
    Ok(Speech {
        whisper,
        options: def.whisper_options(),
        id: model_name(&def.whisper),
    })
}

/// Whisper alone (`percept transcribe`); a model that is not here is an error that says how
/// to fetch it.
pub fn load_whisper(def: &PipelineDef) -> Result<Whisper> {
    let spec = &def.whisper;
    let speech = load_speech(def).map_err(|e| {
        PipelineError::stage(
            format!("model {spec:?} (try `percept models fetch {spec}`)"),
            e,
        )
    })?;
    Ok(speech.whisper)
}

/// CLIP from the definition's id or directory; `Ok(None)` when its weights are not here.
pub fn load_vision(def: &PipelineDef, labels: &LabelChoice) -> Result<Option<Vision>> {
    let Some(clip) = load_clip(def)? else {
        return Ok(None);
    };
    let words = match &labels.labels {
        Some(l) => l.clone(),
        None => parse_vocabulary(BUNDLED_LABELS),
    };
    if words.is_empty() {
        return Err(PipelineError::invalid("the label vocabulary is empty"));
    }
    let cache = labels.cache_dir.clone().unwrap_or_else(default_cache_dir);
    let (set, status) = LabelSet::load_or_build(&clip, &words, &TEMPLATES, &cache)?;
    Ok(Some(Vision {
        stage: VisionStage::new(clip, set, def.tags()),
        id: model_name(&def.clip),
        labels_cache: status,
    }))
}

/// CLIP alone (embeddings and search need no labels).
pub fn load_clip(def: &PipelineDef) -> Result<Option<Clip>> {
    let Ok(dir) = percept_models::locate(&def.clip) else {
        return Ok(None);
    };
    let device = def.device_spec(StageKind::Vision)?.open()?;
    match Clip::load(&dir, &device) {
        Ok(c) => Ok(Some(c)),
        Err(ClipError::MissingWeights { .. }) => Ok(None),
        Err(e) => Err(PipelineError::stage(
            format!("loading CLIP from {}", dir.display()),
            e,
        )),
    }
}

/// The ImageNet classifier from the store (`percept models fetch` installs it).
pub fn load_classifier(def: &PipelineDef) -> Result<Classifier> {
    let dir = percept_models::locate(percept_classify::MODEL_ID)?;
    let device = def.device_spec(StageKind::Vision)?.open()?;
    let mut c = Classifier::load(&dir, &device)
        .map_err(|e| PipelineError::stage(format!("loading {}", dir.display()), e))?;
    c.top_k = LABELS;
    Ok(c)
}

/// Classes per image: enough for a near-tie between breeds, few enough to read.
const LABELS: usize = 3;

/// Adds the classifier's top classes to what is known of `image`.
pub fn add_labels(
    classifier: &Classifier,
    image: &DecodedImage,
    ctx: &mut VisionContext,
) -> Result<()> {
    let top = classifier
        .classify(&[image])
        .map_err(|e| PipelineError::stage(format!("classifying {}", image.source), e))?;
    ctx.labels = top
        .into_iter()
        .flatten()
        .map(|l| percept_core::Tag {
            label: l.name,
            score: l.probability,
        })
        .collect();
    Ok(())
}

/// Tesseract, when installed; the error is the one line that says OCR is off and why.
pub fn load_ocr() -> std::result::Result<Ocr, percept_ocr::OcrError> {
    Ocr::new()
}

/// Adds the `people` fact when `faces` finds any in `image`.
pub fn add_faces(faces: &Faces, image: &DecodedImage, ctx: &mut VisionContext) {
    let gray = percept_faces::to_gray(image);
    let found = percept_faces::detect(faces, &gray, &percept_faces::Params::default());
    if let Some(line) = percept_faces::describe_faces(found.len()) {
        ctx.facts
            .extra
            .insert(percept_core::PEOPLE_FACT.into(), line);
    }
}

/// Adds the text OCR reads in `image` (none when there is none). OCR never fails an image:
/// when Tesseract fails or runs out of time, a fact says so and the rest stands.
pub fn add_text(ocr: &Ocr, image: &DecodedImage, ctx: &mut VisionContext) {
    match ocr.read(image) {
        Ok(text) => ctx.ocr = text.map(|t| t.text),
        Err(e) => {
            ctx.facts.extra.insert("ocr".into(), e.to_string());
        }
    }
}

pub fn load_llm(def: &PipelineDef) -> Result<Llm> {
    let opts = LoadOptions {
        device: def.device_spec(StageKind::Llm)?.open()?,
        convert_to_q8: def.convert_q8,
    };
    let engine = Engine::load(&def.llm, &opts)
        .map_err(|e| PipelineError::stage(format!("loading model `{}`", def.llm), e))?;
    Ok(Llm {
        engine,
        id: model_name(&def.llm),
    })
}

/// The line that tells a person how to get CLIP.
pub fn missing_clip_line() -> String {
    ClipError::MissingWeights {
        dir: "not in the model store and no --clip-dir".to_string(),
    }
    .to_string()
}

/// What an image shows without CLIP: its facts.
pub fn facts_only(image: &DecodedImage) -> VisionContext {
    VisionContext {
        source: image.source.clone(),
        facts: image.facts.clone(),
        ..VisionContext::default()
    }
}

/// A store id stays as given; a path becomes its file or folder name (without `.gguf`).
pub fn model_name(spec: &str) -> String {
    let p = Path::new(spec);
    if p.components().count() <= 1 && !p.exists() {
        return spec.to_string();
    }
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| spec.to_string())
}
