//! The vision stage's jobs: describe images for a chat prompt, or embed images and texts.
//! Decoding happens here, on the stage thread, so a large image never stalls the async runtime.

use crate::error::ApiError;
use crate::workers::{Permit, Reply};
use percept_clip::VisionStage;
use percept_core::{DecodedImage, VisionContext};
use percept_media::image::{decode_image_bytes, ImageError, ImageOptions};

/// Image bytes from a request, with the field they came from (for error messages).
#[derive(Debug, Clone)]
pub struct ImageInput {
    /// Shown to the model and in `percept.images[].source`, e.g. `image 1` or a file name.
    pub name: String,
    pub param: String,
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone)]
pub enum EmbedInput {
    Text(String),
    Image(ImageInput),
}

pub enum VisionWork {
    Describe(Vec<ImageInput>),
    Embed(Vec<EmbedInput>),
}

pub enum VisionOut {
    Contexts(Vec<VisionContext>),
    Embeddings(Vec<Vec<f32>>),
}

pub struct VisionJob {
    pub work: VisionWork,
    pub reply: Reply<VisionOut>,
    /// Released just before the reply, so a client that has its answer finds its place free.
    pub permit: Permit,
}

/// Owns CLIP and the ImageNet classifier (each when its weights were found) on the vision
/// thread.
pub struct VisionWorker {
    stage: Option<VisionStage>,
    classifier: Option<percept_pipeline::load::Classifier>,
    opts: ImageOptions,
}

impl VisionWorker {
    pub fn new(
        stage: Option<VisionStage>,
        classifier: Option<percept_pipeline::load::Classifier>,
    ) -> Self {
        VisionWorker {
            stage,
            classifier,
            opts: ImageOptions::default(),
        }
    }

    pub fn run(&mut self, job: VisionJob) {
        let result = match job.work {
            VisionWork::Describe(images) => self.describe(&images).map(VisionOut::Contexts),
            VisionWork::Embed(inputs) => self.embed(&inputs).map(VisionOut::Embeddings),
        };
        drop(job.permit);
        let _ = job.reply.send(result);
    }

    fn decode(&self, img: &ImageInput) -> Result<DecodedImage, ApiError> {
        decode_image_bytes(&img.name, &img.bytes, &self.opts).map_err(|e| image_error(img, e))
    }

    fn describe(&self, images: &[ImageInput]) -> Result<Vec<VisionContext>, ApiError> {
        images
            .iter()
            .map(|img| {
                let decoded = self.decode(img)?;
                let mut ctx = match &self.stage {
                    Some(stage) => stage.describe(&decoded).map_err(|e| {
                        ApiError::internal(format!("{}: CLIP failed: {e}", img.name))
                    })?,
                    None => percept_pipeline::facts_only(&decoded),
                };
                if let Some(c) = &self.classifier {
                    percept_pipeline::add_labels(c, &decoded, &mut ctx)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                }
                Ok(ctx)
            })
            .collect()
    }

    fn embed(&self, inputs: &[EmbedInput]) -> Result<Vec<Vec<f32>>, ApiError> {
        let Some(stage) = &self.stage else {
            return Err(crate::embeddings::no_clip());
        };
        let clip = stage.clip();
        inputs
            .iter()
            .map(|input| match input {
                EmbedInput::Text(t) => clip
                    .embed_texts(&[t.as_str()], true)
                    .map(|mut v| v.pop().unwrap_or_default())
                    .map_err(|e| ApiError::internal(format!("CLIP text embedding failed: {e}"))),
                EmbedInput::Image(img) => {
                    let decoded = self.decode(img)?;
                    clip.embed_images(&[&decoded])
                        .map(|mut v| v.pop().unwrap_or_default())
                        .map_err(|e| ApiError::internal(format!("{}: CLIP failed: {e}", img.name)))
                }
            })
            .collect()
    }
}

fn image_error(img: &ImageInput, e: ImageError) -> ApiError {
    ApiError::invalid(img.param.clone(), format!("cannot use this image: {e}"))
        .with_code("invalid_image")
}
