//! The network's shape and the preprocessing it was trained with.
//!
//! Both deserialize (unknown keys are errors), so a `config.json` beside the weights can
//! describe another EfficientNet-Lite; without one, [`EfficientNetConfig::lite0`] applies.

use serde::Deserialize;

/// How convolutions pad their input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Padding {
    /// TensorFlow's "SAME": output `ceil(in / stride)`, the odd pixel of padding goes to
    /// the bottom and right. The published Lite weights come from TensorFlow and the
    /// PyTorch package they were released with pads this way.
    TfSame,
    /// `k / 2` on every side (PyTorch's usual `padding=k//2`).
    Symmetric,
}

/// A run of identical MBConv blocks; only the first may change stride and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageConfig {
    pub repeats: usize,
    pub kernel: usize,
    pub stride: usize,
    pub expand: usize,
    pub out_channels: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientNetConfig {
    pub stem_channels: usize,
    pub head_channels: usize,
    pub num_classes: usize,
    /// Batch-norm epsilon, folded into the convolutions at load.
    pub bn_eps: f64,
    pub padding: Padding,
    pub stages: Vec<StageConfig>,
    #[serde(default = "PreprocessConfig::lite")]
    pub preprocess: PreprocessConfig,
}

/// Resize the shorter side to `resize` (Pillow bicubic), center crop `crop` x `crop`,
/// then `(x - mean) / std` on 0..255 values.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreprocessConfig {
    pub resize: u32,
    pub crop: u32,
    pub mean: f32,
    pub std: f32,
}

impl PreprocessConfig {
    /// TensorFlow's EfficientNet-Lite evaluation: a center crop of 224/256 of the shorter
    /// side resized to 224 (the usual "resize 256, crop 224"), and the Lite models'
    /// mean 127 / std 128 instead of per-channel ImageNet statistics.
    pub fn lite() -> Self {
        PreprocessConfig {
            resize: 256,
            crop: 224,
            mean: 127.0,
            std: 128.0,
        }
    }
}

impl EfficientNetConfig {
    /// EfficientNet-Lite0: 16 blocks, stride 2 at the stem and at blocks 1, 3, 5 and 11.
    pub fn lite0() -> Self {
        let s = |repeats, kernel, stride, expand, out_channels| StageConfig {
            repeats,
            kernel,
            stride,
            expand,
            out_channels,
        };
        EfficientNetConfig {
            stem_channels: 32,
            head_channels: 1280,
            num_classes: 1000,
            bn_eps: 1e-3,
            padding: Padding::TfSame,
            stages: vec![
                s(1, 3, 1, 1, 16),
                s(2, 3, 2, 6, 24),
                s(2, 5, 2, 6, 40),
                s(3, 3, 2, 6, 80),
                s(3, 5, 1, 6, 112),
                s(4, 5, 2, 6, 192),
                s(1, 3, 1, 6, 320),
            ],
            preprocess: PreprocessConfig::lite(),
        }
    }

    /// (kernel, stride, expand, out_channels) of every block in order.
    pub fn blocks(&self) -> Vec<(usize, usize, usize, usize)> {
        self.stages
            .iter()
            .flat_map(|s| {
                (0..s.repeats).map(move |i| {
                    let stride = if i == 0 { s.stride } else { 1 };
                    (s.kernel, stride, s.expand, s.out_channels)
                })
            })
            .collect()
    }

    /// Padding (before, after) along one axis for a `kernel`/`stride` conv on `size` pixels.
    pub fn pad(&self, size: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match self.padding {
            Padding::Symmetric => (kernel / 2, kernel / 2),
            Padding::TfSame => {
                let out = size.div_ceil(stride);
                let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(size);
                (total / 2, total - total / 2)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lite0_has_sixteen_blocks_with_the_known_strides() {
        let b = EfficientNetConfig::lite0().blocks();
        assert_eq!(b.len(), 16);
        let strided: Vec<usize> = (0..16).filter(|&i| b[i].1 == 2).collect();
        assert_eq!(strided, [1, 3, 5, 11]);
    }

    #[test]
    fn tf_same_puts_the_odd_pixel_after() {
        let c = EfficientNetConfig::lite0();
        assert_eq!(c.pad(224, 3, 2), (0, 1));
        assert_eq!(c.pad(56, 5, 2), (1, 2));
        assert_eq!(c.pad(14, 5, 1), (2, 2));
        assert_eq!(c.pad(7, 1, 1), (0, 0));
    }

    #[test]
    fn config_deserializes_and_rejects_unknown_keys() {
        let json = r#"{"stem_channels": 32, "head_channels": 1280, "num_classes": 1000,
            "bn_eps": 0.001, "padding": "symmetric",
            "stages": [{"repeats": 1, "kernel": 3, "stride": 1, "expand": 1, "out_channels": 16}]}"#;
        let c: EfficientNetConfig = serde_json::from_str(json).expect("config");
        assert_eq!(c.padding, Padding::Symmetric);
        assert_eq!(c.preprocess, PreprocessConfig::lite());
        let bad = json.replace("\"bn_eps\"", "\"bn_epsilon\"");
        assert!(serde_json::from_str::<EfficientNetConfig>(&bad).is_err());
    }
}
