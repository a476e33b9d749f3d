//! `config.json` (model) and `preprocessor_config.json` in the Hugging Face layout.
//! Missing keys take the defaults of transformers' `CLIPConfig`/`CLIPImageProcessor`.

use crate::ClipError;
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Activation {
    #[serde(rename = "quick_gelu")]
    QuickGelu,
    /// transformers' "gelu" is the exact erf form.
    #[serde(rename = "gelu")]
    Gelu,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub max_position_embeddings: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
    /// transformers treats 2 as the legacy value meaning "the highest id is the end token".
    pub eos_token_id: u32,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_attention_heads: 8,
            num_hidden_layers: 12,
            max_position_embeddings: 77,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
            eos_token_id: 2,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_attention_heads: usize,
    pub num_hidden_layers: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub hidden_act: Activation,
    pub layer_norm_eps: f64,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_attention_heads: 12,
            num_hidden_layers: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: Activation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClipConfig {
    #[serde(default)]
    pub text_config: TextConfig,
    #[serde(default)]
    pub vision_config: VisionConfig,
    #[serde(default = "default_projection_dim")]
    pub projection_dim: usize,
    #[serde(default = "default_logit_scale")]
    pub logit_scale_init_value: f32,
}

fn default_projection_dim() -> usize {
    512
}

fn default_logit_scale() -> f32 {
    2.6592
}

impl ClipConfig {
    /// openai/clip-vit-base-patch32 (transformers' defaults).
    pub fn vit_b32() -> Self {
        ClipConfig {
            text_config: TextConfig::default(),
            vision_config: VisionConfig::default(),
            projection_dim: default_projection_dim(),
            logit_scale_init_value: default_logit_scale(),
        }
    }

    pub fn from_file(path: &Path) -> Result<Self, ClipError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClipError::io(path, e))?;
        let c: ClipConfig = serde_json::from_str(&text).map_err(|e| ClipError::Config {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        c.validate().map_err(|message| ClipError::Config {
            path: path.display().to_string(),
            message,
        })?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), String> {
        let v = &self.vision_config;
        let t = &self.text_config;
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(format!(
                "vision_config.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            ));
        }
        for (name, hidden, heads) in [
            ("vision_config", v.hidden_size, v.num_attention_heads),
            ("text_config", t.hidden_size, t.num_attention_heads),
        ] {
            if heads == 0 || !hidden.is_multiple_of(heads) {
                return Err(format!(
                    "{name}.hidden_size {hidden} is not divisible by num_attention_heads {heads}"
                ));
            }
        }
        Ok(())
    }
}

/// `CLIPImageProcessor` settings that change pixel values.
#[derive(Debug, Clone, PartialEq)]
pub struct PreprocessConfig {
    pub shortest_edge: u32,
    pub crop_height: u32,
    pub crop_width: u32,
    pub rescale_factor: f64,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for PreprocessConfig {
    fn default() -> Self {
        PreprocessConfig {
            shortest_edge: 224,
            crop_height: 224,
            crop_width: 224,
            rescale_factor: 1.0 / 255.0,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
        }
    }
}

impl PreprocessConfig {
    /// Reads `preprocessor_config.json`; `size`/`crop_size` may be ints or objects.
    pub fn from_file(path: &Path) -> Result<Self, ClipError> {
        let text = std::fs::read_to_string(path).map_err(|e| ClipError::io(path, e))?;
        let bad = |message: String| ClipError::Config {
            path: path.display().to_string(),
            message,
        };
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let mut c = PreprocessConfig::default();
        match v.get("size") {
            Some(serde_json::Value::Number(n)) => c.shortest_edge = as_u32(n.as_u64()),
            Some(obj @ serde_json::Value::Object(_)) => {
                if let Some(s) = obj.get("shortest_edge").and_then(|s| s.as_u64()) {
                    c.shortest_edge = as_u32(Some(s));
                } else {
                    return Err(bad("only size.shortest_edge resizing is supported".into()));
                }
            }
            _ => {}
        }
        match v.get("crop_size") {
            Some(serde_json::Value::Number(n)) => {
                c.crop_height = as_u32(n.as_u64());
                c.crop_width = c.crop_height;
            }
            Some(obj @ serde_json::Value::Object(_)) => {
                c.crop_height = as_u32(obj.get("height").and_then(|x| x.as_u64()));
                c.crop_width = as_u32(obj.get("width").and_then(|x| x.as_u64()));
            }
            _ => {}
        }
        if let Some(f) = v.get("rescale_factor").and_then(|x| x.as_f64()) {
            c.rescale_factor = f;
        }
        for (key, dst) in [("image_mean", &mut c.mean), ("image_std", &mut c.std)] {
            if let Some(arr) = v.get(key).and_then(|x| x.as_array()) {
                if arr.len() != 3 {
                    return Err(bad(format!("{key} must have 3 values")));
                }
                for (d, x) in dst.iter_mut().zip(arr) {
                    *d = x
                        .as_f64()
                        .ok_or_else(|| bad(format!("{key} must be numbers")))?
                        as f32;
                }
            }
        }
        if c.shortest_edge == 0 || c.crop_height == 0 || c.crop_width == 0 {
            return Err(bad("size and crop_size must be positive".into()));
        }
        Ok(c)
    }
}

fn as_u32(v: Option<u64>) -> u32 {
    v.and_then(|x| u32::try_from(x).ok()).unwrap_or(0)
}
