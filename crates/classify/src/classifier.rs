//! The public face: load a checkpoint, classify decoded images in one batch.

use crate::config::EfficientNetConfig;
use crate::efficientnet::EfficientNet;
use crate::error::ClassifyError;
use crate::preprocess;
use candle_core::{Device, Tensor, D};
use percept_core::DecodedImage;
use std::path::{Path, PathBuf};

/// The manifest id of the default classifier.
pub const MODEL_ID: &str = "efficientnet-lite0";

/// ImageNet-1k class names in class-index order (from torchvision; see assets/ATTRIBUTION.md).
const IMAGENET_CLASSES: &str = include_str!("../../../assets/imagenet_classes.txt");

/// One predicted class.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Label {
    pub name: String,
    pub index: usize,
    /// Softmax over all classes.
    pub probability: f32,
}

#[derive(Debug, Clone)]
pub struct Classifier {
    pub model: EfficientNet,
    pub labels: Vec<String>,
    /// How many labels [`Classifier::classify`] returns per image.
    pub top_k: usize,
    device: Device,
}

impl Classifier {
    /// Loads a legacy torch checkpoint: `path` is the `.pth` file itself or a directory
    /// holding exactly one (a model directory from the store). A `config.json` beside it
    /// replaces the built-in EfficientNet-Lite0 configuration.
    pub fn load(path: &Path, device: &Device) -> Result<Self, ClassifyError> {
        let file = find_checkpoint(path)?;
        let config_path = file.with_file_name("config.json");
        let config = if config_path.is_file() {
            let text = std::fs::read_to_string(&config_path)
                .map_err(|e| ClassifyError::io(&config_path, e))?;
            serde_json::from_str(&text).map_err(|e| ClassifyError::Config {
                path: config_path.display().to_string(),
                message: e.to_string(),
            })?
        } else {
            EfficientNetConfig::lite0()
        };
        let bytes = std::fs::read(&file).map_err(|e| ClassifyError::io(&file, e))?;
        let tensors =
            crate::pth::read_legacy_pth(&bytes).map_err(|source| ClassifyError::Checkpoint {
                path: file.display().to_string(),
                source: Box::new(source),
            })?;
        drop(bytes);
        Self::from_tensors(tensors, config, device)
    }

    /// Builds the classifier from a state dict already in memory.
    pub fn from_tensors(
        tensors: Vec<(String, Tensor)>,
        config: EfficientNetConfig,
        device: &Device,
    ) -> Result<Self, ClassifyError> {
        let pre = &config.preprocess;
        if pre.crop == 0 || pre.resize < pre.crop || pre.std == 0.0 {
            return Err(ClassifyError::Config {
                path: "config".into(),
                message: format!("preprocess {pre:?}: need 0 < crop <= resize and std != 0"),
            });
        }
        let labels: Vec<String> = IMAGENET_CLASSES.lines().map(str::to_string).collect();
        if labels.len() != config.num_classes {
            return Err(ClassifyError::Config {
                path: "config".into(),
                message: format!(
                    "{} classes, but the bundled label list has {}",
                    config.num_classes,
                    labels.len()
                ),
            });
        }
        let model = EfficientNet::from_tensors(tensors, config, device)?;
        Ok(Classifier {
            model,
            labels,
            top_k: 5,
            device: device.clone(),
        })
    }

    /// Preprocessed pixels `[3, crop, crop]` for one image.
    pub fn preprocess(&self, image: &DecodedImage) -> Result<Vec<f32>, ClassifyError> {
        let (w, h) = (image.width as usize, image.height as usize);
        if w == 0 || h == 0 || image.rgb.len() != w * h * 3 {
            return Err(ClassifyError::Image {
                source_name: image.source.clone(),
                message: format!("{w}x{h} with {} bytes of RGB", image.rgb.len()),
            });
        }
        let cfg = &self.model.config.preprocess;
        let crop = preprocess::resize_and_crop(&image.rgb, image.width, image.height, cfg);
        Ok(preprocess::normalize(&crop, cfg))
    }

    /// Logits `[n, classes]` for a batch of preprocessed inputs `[n, 3, crop, crop]`.
    pub fn logits(&self, pixels: &Tensor) -> Result<Tensor, ClassifyError> {
        let x = pixels
            .to_device(&self.device)
            .map_err(ClassifyError::model("moving input"))?;
        self.model
            .forward(&x)
            .map_err(ClassifyError::model("EfficientNet forward"))
    }

    /// The `top_k` most probable classes of each image, all images in one forward pass.
    pub fn classify(&self, images: &[&DecodedImage]) -> Result<Vec<Vec<Label>>, ClassifyError> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let crop = self.model.config.preprocess.crop as usize;
        let mut pixels = Vec::with_capacity(images.len() * 3 * crop * crop);
        for img in images {
            pixels.extend(self.preprocess(img)?);
        }
        let x = Tensor::from_vec(pixels, (images.len(), 3, crop, crop), &Device::Cpu)
            .map_err(ClassifyError::model("input batch"))?;
        let logits = self.logits(&x)?;
        self.top(&logits, self.top_k)
    }

    /// The `k` most probable labels for each row of `logits`, most probable first.
    pub fn top(&self, logits: &Tensor, k: usize) -> Result<Vec<Vec<Label>>, ClassifyError> {
        let probs = candle_nn::ops::softmax(logits, D::Minus1)
            .and_then(|p| p.to_device(&Device::Cpu))
            .and_then(|p| p.to_vec2::<f32>())
            .map_err(ClassifyError::model("softmax"))?;
        Ok(probs
            .iter()
            .map(|row| {
                let mut order: Vec<usize> = (0..row.len()).collect();
                // Ties keep the lower index first, as torch.topk does on the CPU.
                order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
                order
                    .into_iter()
                    .take(k)
                    .map(|i| Label {
                        name: self.labels.get(i).cloned().unwrap_or_default(),
                        index: i,
                        probability: row[i],
                    })
                    .collect()
            })
            .collect())
    }
}

/// The checkpoint file `path` names: itself, or the one `.pth` inside a directory.
fn find_checkpoint(path: &Path) -> Result<PathBuf, ClassifyError> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    if !path.is_dir() {
        return Err(ClassifyError::MissingWeights {
            path: path.display().to_string(),
        });
    }
    let entries = std::fs::read_dir(path).map_err(|e| ClassifyError::io(path, e))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pth") && p.is_file())
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ClassifyError::MissingWeights {
            path: path.display().to_string(),
        }),
        _ => Err(ClassifyError::Config {
            path: path.display().to_string(),
            message: format!("{} .pth files; pass the one to use", found.len()),
        }),
    }
}
