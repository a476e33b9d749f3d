//! The pipeline stage: decoded image in, tags + facts + embedding out.

use crate::labels::LabelSet;
use crate::Clip;
use percept_core::{DecodedImage, Stage, StageError, VisionContext};

pub struct VisionStage {
    clip: Clip,
    labels: LabelSet,
    top_k: usize,
    keep_embedding: bool,
}

impl VisionStage {
    /// `labels` usually comes from [`LabelSet::load_or_build`] so that building the
    /// label embeddings happens once, before the pipeline starts.
    pub fn new(clip: Clip, labels: LabelSet, top_k: usize) -> Self {
        VisionStage {
            clip,
            labels,
            top_k,
            keep_embedding: true,
        }
    }

    /// Leaves the embedding out of the output (it is 512+ floats per image).
    pub fn without_embedding(mut self) -> Self {
        self.keep_embedding = false;
        self
    }

    pub fn clip(&self) -> &Clip {
        &self.clip
    }

    /// Tags one image; used by the stage and by the CLI directly.
    pub fn describe(&self, image: &DecodedImage) -> Result<VisionContext, crate::ClipError> {
        let emb = self.clip.embed_images(&[image])?.pop().unwrap_or_default();
        let tags = self
            .labels
            .top_k(&emb, self.clip.model.logit_scale, self.top_k);
        Ok(VisionContext {
            source: image.source.clone(),
            tags,
            facts: image.facts.clone(),
            embedding: self.keep_embedding.then_some(emb),
            labels: Vec::new(),
            ocr: None,
        })
    }
}

impl Stage for VisionStage {
    type Input = DecodedImage;
    type Output = VisionContext;

    fn name(&self) -> &str {
        "vision"
    }

    fn process(&mut self, input: DecodedImage) -> Result<VisionContext, StageError> {
        self.describe(&input)
            .map_err(|e| StageError::from_error(&e))
    }
}
