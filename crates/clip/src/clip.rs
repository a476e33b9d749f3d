//! A loaded CLIP model folder: weights, config, processor settings and tokenizer.

use crate::config::{ClipConfig, PreprocessConfig};
use crate::model::{l2_normalize, ClipModel};
use crate::preprocess;
use crate::tokenizer::ClipTokenizer;
use crate::ClipError;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use percept_core::DecodedImage;
use sha2::{Digest, Sha256};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The store id of the default CLIP model.
pub const MODEL_ID: &str = "clip-vit-base-patch32";

/// Images per forward pass: large enough for good matmul shapes, small enough that
/// ViT-L activations stay in a few hundred MB.
const IMAGE_BATCH: usize = 8;
const TEXT_BATCH: usize = 64;

/// CPU unless a GPU feature is compiled in and a device is present.
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    if let Ok(d) = Device::new_cuda(0) {
        return d;
    }
    #[cfg(feature = "metal")]
    if let Ok(d) = Device::new_metal(0) {
        return d;
    }
    Device::Cpu
}

pub struct Clip {
    pub model: ClipModel,
    pub tokenizer: ClipTokenizer,
    pub preprocess: PreprocessConfig,
    /// Identifies these weights in cache keys (see [`fingerprint`]).
    pub fingerprint: String,
    pub dir: PathBuf,
}

impl Clip {
    /// Loads `config.json` + `model.safetensors` (+ optional `preprocessor_config.json`
    /// and `merges.txt`; the bundled OpenAI vocabulary otherwise).
    pub fn load(dir: &Path, device: &Device) -> Result<Self, ClipError> {
        let weights = dir.join("model.safetensors");
        let config_path = dir.join("config.json");
        if !weights.is_file() || !config_path.is_file() {
            return Err(ClipError::MissingWeights {
                dir: dir.display().to_string(),
            });
        }
        let config = ClipConfig::from_file(&config_path)?;
        let pp = dir.join("preprocessor_config.json");
        let preprocess = if pp.is_file() {
            PreprocessConfig::from_file(&pp)?
        } else {
            PreprocessConfig::default()
        };
        let merges = dir.join("merges.txt");
        let tokenizer = if merges.is_file() {
            let text = std::fs::read_to_string(&merges).map_err(|e| ClipError::io(&merges, e))?;
            ClipTokenizer::from_merges(&text)?
        } else {
            ClipTokenizer::bundled()?
        };
        let bytes = std::fs::read(&weights).map_err(|e| ClipError::io(&weights, e))?;
        let what = weights.display().to_string();
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device)
            .map_err(ClipError::model(what.clone()))?;
        let model = ClipModel::new(vb, &config).map_err(ClipError::model(what))?;
        Ok(Clip {
            model,
            tokenizer,
            preprocess,
            fingerprint: fingerprint(&config_path, &weights)?,
            dir: dir.to_path_buf(),
        })
    }

    /// Randomly initialised weights with `config`'s shapes: for speed measurements
    /// where no real weights are available (`percept bench clip --random`).
    pub fn random(config: &ClipConfig, device: &Device) -> Result<Self, ClipError> {
        let varmap = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
        ClipModel::new(vb, config).map_err(ClipError::model("random CLIP"))?;
        // Built again from detached copies: a model made of `Var`s records every op for
        // backprop, which keeps intermediates alive and is not how loaded weights run.
        let tensors = varmap
            .data()
            .lock()
            .map_err(|_| ClipError::Model {
                context: "random CLIP".into(),
                source: candle_core::Error::Msg("weight map lock poisoned".into()),
            })?
            .iter()
            .map(|(name, var)| (name.clone(), var.as_detached_tensor()))
            .collect();
        let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
        let model = ClipModel::new(vb, config).map_err(ClipError::model("random CLIP"))?;
        let size = config.vision_config.image_size as u32;
        Ok(Clip {
            model,
            tokenizer: ClipTokenizer::bundled()?,
            preprocess: PreprocessConfig {
                shortest_edge: size,
                crop_height: size,
                crop_width: size,
                ..PreprocessConfig::default()
            },
            fingerprint: "random".to_string(),
            dir: PathBuf::new(),
        })
    }

    /// Normalised pixels `[3, crop_h, crop_w]` of one image.
    pub fn pixel_values(&self, img: &DecodedImage) -> Vec<f32> {
        preprocess::pixel_values(&img.rgb, img.width, img.height, &self.preprocess)
    }

    /// Unit-length image embeddings, one per image.
    pub fn embed_images(&self, images: &[&DecodedImage]) -> Result<Vec<Vec<f32>>, ClipError> {
        let mut out = Vec::with_capacity(images.len());
        for chunk in images.chunks(IMAGE_BATCH) {
            let pixels: Vec<Vec<f32>> = chunk.iter().map(|i| self.pixel_values(i)).collect();
            out.extend(self.embed_pixels(&pixels, true)?);
        }
        Ok(out)
    }

    /// Image features of ready-made pixel values; `normalize` false gives transformers'
    /// raw `get_image_features` output.
    pub fn embed_pixels(
        &self,
        pixels: &[Vec<f32>],
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>, ClipError> {
        let (h, w) = (
            self.preprocess.crop_height as usize,
            self.preprocess.crop_width as usize,
        );
        let flat: Vec<f32> = pixels.iter().flatten().copied().collect();
        let err = ClipError::model("image tower");
        let run = || -> candle_core::Result<Vec<Vec<f32>>> {
            let t = Tensor::from_vec(flat, (pixels.len(), 3, h, w), self.model.device())?;
            let f = self.model.image_features(&t)?;
            let f = if normalize { l2_normalize(&f)? } else { f };
            f.to_dtype(DType::F32)?.to_vec2::<f32>()
        };
        run().map_err(err)
    }

    /// Unit-length text embeddings (or raw features with `normalize` false).
    pub fn embed_texts(&self, texts: &[&str], normalize: bool) -> Result<Vec<Vec<f32>>, ClipError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(TEXT_BATCH) {
            let ids: Vec<Vec<u32>> = chunk.iter().map(|t| self.tokenizer.encode(t)).collect();
            let run = || -> candle_core::Result<Vec<Vec<f32>>> {
                let f = self.model.text_features(&ids)?;
                let f = if normalize { l2_normalize(&f)? } else { f };
                f.to_dtype(DType::F32)?.to_vec2::<f32>()
            };
            out.extend(run().map_err(ClipError::model("text tower"))?);
        }
        Ok(out)
    }
}

/// A cheap identity for cache keys: hashing all of a 600 MB weights file would cost
/// about a second per run, so the config, the size and the first and last MiB stand in.
pub fn fingerprint(config: &Path, weights: &Path) -> Result<String, ClipError> {
    let mut h = Sha256::new();
    h.update(std::fs::read(config).map_err(|e| ClipError::io(config, e))?);
    let mut f = std::fs::File::open(weights).map_err(|e| ClipError::io(weights, e))?;
    let len = f.metadata().map_err(|e| ClipError::io(weights, e))?.len();
    h.update(len.to_le_bytes());
    let mut read_at = |pos: u64, h: &mut Sha256| -> std::io::Result<()> {
        f.seek(SeekFrom::Start(pos))?;
        let mut buf = Vec::with_capacity(1 << 20);
        (&mut f).take(1 << 20).read_to_end(&mut buf)?;
        h.update(&buf);
        Ok(())
    };
    read_at(0, &mut h).map_err(|e| ClipError::io(weights, e))?;
    read_at(len.saturating_sub(1 << 20), &mut h).map_err(|e| ClipError::io(weights, e))?;
    Ok(hex::encode(h.finalize()))
}
