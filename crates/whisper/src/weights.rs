//! Weight loading from a model directory: CTranslate2 `model.bin` or Hugging Face
//! `model.safetensors` + `config.json`. Dimensions come from the tensors themselves.

use crate::WhisperError;
use candle_core::{DType, Device, Tensor};
use candle_nn::LayerNorm;
use percept_kernels::Linear;
use std::collections::HashMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dims {
    pub n_mels: usize,
    pub n_audio_ctx: usize,
    pub n_audio_state: usize,
    pub n_audio_head: usize,
    pub n_audio_layer: usize,
    pub n_vocab: usize,
    pub n_text_ctx: usize,
    pub n_text_state: usize,
    pub n_text_head: usize,
    pub n_text_layer: usize,
}

/// HF-named f32 tensors plus the dimensions; model building takes tensors out by name.
pub struct Weights {
    pub dims: Dims,
    tensors: HashMap<String, Tensor>,
    path: String,
}

fn count_layers(t: &HashMap<String, Tensor>, stack: &str) -> usize {
    (0..)
        .take_while(|i| t.contains_key(&format!("model.{stack}.layers.{i}.fc1.weight")))
        .count()
}

impl Weights {
    fn from_tensors(
        tensors: HashMap<String, Tensor>,
        enc_heads: usize,
        dec_heads: usize,
        path: String,
    ) -> Result<Self, WhisperError> {
        let dim = |name: &str, i: usize| -> Result<usize, WhisperError> {
            tensors
                .get(name)
                .and_then(|t| t.dims().get(i).copied())
                .ok_or_else(|| WhisperError::Model {
                    path: path.clone(),
                    reason: format!("missing tensor {name}"),
                })
        };
        let dims = Dims {
            n_mels: dim("model.encoder.conv1.weight", 1)?,
            n_audio_state: dim("model.encoder.conv1.weight", 0)?,
            n_audio_ctx: dim("model.encoder.embed_positions.weight", 0)?,
            n_audio_head: enc_heads,
            n_audio_layer: count_layers(&tensors, "encoder"),
            n_vocab: dim("model.decoder.embed_tokens.weight", 0)?,
            n_text_ctx: dim("model.decoder.embed_positions.weight", 0)?,
            n_text_state: dim("model.decoder.embed_tokens.weight", 1)?,
            n_text_head: dec_heads,
            n_text_layer: count_layers(&tensors, "decoder"),
        };
        if dims.n_audio_head == 0
            || dims.n_text_head == 0
            || !dims.n_audio_state.is_multiple_of(dims.n_audio_head)
            || !dims.n_text_state.is_multiple_of(dims.n_text_head)
            || dims.n_audio_layer == 0
            || dims.n_text_layer == 0
        {
            return Err(WhisperError::Model {
                path,
                reason: format!("inconsistent dimensions {dims:?}"),
            });
        }
        Ok(Weights {
            dims,
            tensors,
            path,
        })
    }

    /// Loads whichever layout `dir` holds.
    pub fn load(dir: &Path, dev: &Device) -> Result<Self, WhisperError> {
        let ct2 = dir.join("model.bin");
        if ct2.is_file() {
            let w = crate::ct2::load(&ct2, dev)?;
            return Self::from_tensors(
                w.tensors,
                w.encoder_heads,
                w.decoder_heads,
                ct2.display().to_string(),
            );
        }
        let st = dir.join("model.safetensors");
        if st.is_file() {
            return Self::load_safetensors(dir, &st, dev);
        }
        Err(WhisperError::Model {
            path: dir.display().to_string(),
            reason: "no model.bin (CTranslate2) or model.safetensors (Hugging Face) found".into(),
        })
    }

    fn load_safetensors(dir: &Path, st: &Path, dev: &Device) -> Result<Self, WhisperError> {
        let cfg_path = dir.join("config.json");
        let err = |path: &Path, reason: String| WhisperError::Model {
            path: path.display().to_string(),
            reason,
        };
        let cfg: serde_json::Value = std::fs::read(&cfg_path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
            .map_err(|r| err(&cfg_path, r))?;
        let heads = |key: &str| {
            cfg.get(key)
                .and_then(|v| v.as_u64())
                .map(|v| v as usize)
                .ok_or_else(|| err(&cfg_path, format!("missing {key}")))
        };
        let (eh, dh) = (
            heads("encoder_attention_heads")?,
            heads("decoder_attention_heads")?,
        );
        let raw = candle_core::safetensors::load(st, dev).map_err(|e| err(st, e.to_string()))?;
        let mut tensors = HashMap::with_capacity(raw.len());
        for (k, t) in raw {
            let t = t.to_dtype(DType::F32).map_err(|e| err(st, e.to_string()))?;
            let k = if k.starts_with("model.") || k == "proj_out.weight" {
                k
            } else {
                format!("model.{k}")
            };
            tensors.insert(k, t);
        }
        Self::from_tensors(tensors, eh, dh, st.display().to_string())
    }

    pub fn get(&mut self, name: &str) -> candle_core::Result<Tensor> {
        match self.tensors.remove(name) {
            Some(t) => Ok(t),
            None => candle_core::bail!("{}: missing tensor {name}", self.path),
        }
    }

    pub fn linear(&mut self, prefix: &str) -> candle_core::Result<Linear> {
        let w = self.get(&format!("{prefix}.weight"))?;
        let b = self.tensors.remove(&format!("{prefix}.bias"));
        Ok(Linear::new(w, b))
    }

    pub fn layer_norm(&mut self, prefix: &str) -> candle_core::Result<LayerNorm> {
        let w = self.get(&format!("{prefix}.weight"))?;
        let b = self.get(&format!("{prefix}.bias"))?;
        Ok(LayerNorm::new(w, b, 1e-5))
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};
    use std::collections::HashMap;

    /// No Hugging Face Whisper weights are reachable here, so the test writes the CTranslate2
    /// tiny.en weights in the Hugging Face layout (fp16 `model.safetensors` with HF tensor
    /// names and no k_proj biases, `config.json` with the head counts) and checks that both
    /// directories transcribe jfk.wav identically.
    #[test]
    fn hugging_face_safetensors_layout_transcribes_like_ctranslate2() {
        let ct2_dir = percept_models::locate("whisper-tiny.en")
            .expect("whisper-tiny.en missing: run `percept models fetch whisper-tiny.en`");
        let w = crate::ct2::load(&ct2_dir.join("model.bin"), &Device::Cpu).expect("ct2");
        let mut hf: HashMap<String, Tensor> = HashMap::new();
        for (name, t) in w.tensors {
            if name.ends_with(".k_proj.bias") {
                let max = t
                    .abs()
                    .and_then(|a| a.max_all())
                    .and_then(|m| m.to_scalar::<f32>());
                assert!(max.expect("max") < 1e-6, "{name} is not zero");
                continue;
            }
            hf.insert(name, t.to_dtype(DType::F16).expect("f16"));
        }
        let dir = tempfile::tempdir().expect("tmp");
        candle_core::safetensors::save(&hf, dir.path().join("model.safetensors")).expect("save");
        let config = serde_json::json!({
            "model_type": "whisper",
            "encoder_attention_heads": w.encoder_heads,
            "decoder_attention_heads": w.decoder_heads,
        });
        std::fs::write(dir.path().join("config.json"), config.to_string()).expect("config");
        std::fs::copy(
            ct2_dir.join("tokenizer.json"),
            dir.path().join("tokenizer.json"),
        )
        .expect("tokenizer");

        let jfk =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/audio/jfk.wav");
        let opts = crate::Options::default();
        let text = |d: &std::path::Path| {
            crate::Whisper::load(d, &Device::Cpu)
                .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
                .transcribe_file(&jfk, &opts)
                .expect("transcribe")
                .text
        };
        let a = text(&ct2_dir);
        let b = text(dir.path());
        assert!(a.contains("ask not what your country"), "{a}");
        assert_eq!(a, b);
    }
}
