//! The vision thread's jobs: describe images (CLIP tags when its weights are here, the
//! ImageNet classifier's labels, the text OCR reads, the facts), embed images and texts,
//! score probe candidates.

use super::error::JobError;
use super::media::{decode_image, Media};
use crate::load::{add_faces, add_labels, add_text, facts_only, Classifier, Faces, Ocr};
use crate::probe::{self, ImageProbe};
use percept_clip::VisionStage;
use percept_core::{DecodedImage, VisionContext};
use percept_media::image::ImageOptions;

/// One input to embed.
#[derive(Debug, Clone)]
pub enum EmbedInput {
    Text(String),
    Image(Media),
}

pub enum VisionWork {
    /// One result per image, in order: a bad image does not cost the others.
    Describe(Vec<Media>),
    Embed(Vec<EmbedInput>),
    Probe {
        images: Vec<VisionContext>,
        candidates: Vec<String>,
    },
}

pub enum VisionOut {
    Contexts(Vec<Result<VisionContext, JobError>>),
    Embeddings(Vec<Vec<f32>>),
    Probes(Vec<ImageProbe>),
}

/// Owns CLIP and the classifier (each when its weights were found) on the vision thread;
/// `percept tag` uses one directly.
pub struct VisionWorker {
    stage: Option<VisionStage>,
    classifier: Option<Classifier>,
    ocr: Option<Ocr>,
    faces: Option<Faces>,
    opts: ImageOptions,
}

impl VisionWorker {
    pub fn new(
        stage: Option<VisionStage>,
        classifier: Option<Classifier>,
        opts: ImageOptions,
    ) -> Self {
        VisionWorker {
            stage,
            classifier,
            ocr: None,
            faces: None,
            opts,
        }
    }

    /// Reads the text in every image with `ocr` (when Tesseract is installed).
    pub fn with_ocr(mut self, ocr: Option<Ocr>) -> Self {
        self.ocr = ocr;
        self
    }

    /// Looks for human faces in every image with `faces` (when OpenCV's cascade is
    /// installed).
    pub fn with_faces(mut self, faces: Option<Faces>) -> Self {
        self.faces = faces;
        self
    }

    pub fn run(&self, work: VisionWork) -> Result<VisionOut, JobError> {
        Ok(match work {
            VisionWork::Describe(images) => VisionOut::Contexts(
                images
                    .iter()
                    .enumerate()
                    .map(|(i, m)| self.describe(i, m))
                    .collect(),
            ),
            VisionWork::Embed(inputs) => VisionOut::Embeddings(self.embed(&inputs)?),
            VisionWork::Probe { images, candidates } => {
                let clip = self.clip()?;
                let probes =
                    probe::probe_images(clip.clip(), &images, &candidates).map_err(|e| {
                        JobError::Vision {
                            index: 0,
                            name: "probe".into(),
                            message: e.to_string(),
                        }
                    })?;
                VisionOut::Probes(probes)
            }
        })
    }

    fn clip(&self) -> Result<&VisionStage, JobError> {
        self.stage.as_ref().ok_or_else(|| {
            JobError::NotLoaded(format!(
                "no CLIP model is loaded: {}",
                crate::load::missing_clip_line()
            ))
        })
    }

    fn describe(&self, index: usize, m: &Media) -> Result<VisionContext, JobError> {
        let img = decode_image(index, m, &self.opts)?;
        self.see(&img).map_err(|message| JobError::Vision {
            index,
            name: m.name.clone(),
            message,
        })
    }

    /// Everything the loaded models and the file say about one image.
    pub fn see(&self, img: &DecodedImage) -> Result<VisionContext, String> {
        let mut ctx = match &self.stage {
            Some(stage) => stage
                .describe(img)
                .map_err(|e| format!("CLIP failed: {e}"))?,
            None => facts_only(img),
        };
        if let Some(c) = &self.classifier {
            add_labels(c, img, &mut ctx).map_err(|e| e.to_string())?;
        }
        if let Some(o) = &self.ocr {
            add_text(o, img, &mut ctx);
        }
        if let Some(f) = &self.faces {
            add_faces(f, img, &mut ctx);
        }
        Ok(ctx)
    }

    fn embed(&self, inputs: &[EmbedInput]) -> Result<Vec<Vec<f32>>, JobError> {
        let clip = self.clip()?.clip();
        inputs
            .iter()
            .enumerate()
            .map(|(index, input)| {
                let failed = |name: &str, e: percept_clip::ClipError| JobError::Vision {
                    index,
                    name: name.to_string(),
                    message: format!("CLIP failed: {e}"),
                };
                match input {
                    EmbedInput::Text(t) => clip
                        .embed_texts(&[t.as_str()], true)
                        .map(|mut v| v.pop().unwrap_or_default())
                        .map_err(|e| failed("text", e)),
                    EmbedInput::Image(m) => {
                        let img = decode_image(index, m, &self.opts)?;
                        clip.embed_images(&[&img])
                            .map(|mut v| v.pop().unwrap_or_default())
                            .map_err(|e| failed(&m.name, e))
                    }
                }
            })
            .collect()
    }
}
