//! The decoder network, picked by `general.architecture`: percept's own CPU decoder
//! (`native/`) for llama, qwen2, qwen3 and gemma3 files in the block formats it has kernels
//! for, candle's quantized models for everything else (gemma3 with rotary scaling, other
//! formats, CUDA, Metal).

use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;
use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use candle_transformers::models::{
    quantized_gemma3, quantized_llama, quantized_qwen2, quantized_qwen3,
};
use std::io::Cursor;

/// candle's llama/qwen2 rotary tables stop here, whatever the GGUF claims.
const CANDLE_MAX_POSITIONS: usize = 4096;

/// Block formats candle runs with SIMD kernels on CPU; others are converted at load.
fn needs_conversion(dtype: GgmlDType) -> bool {
    matches!(dtype, GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1)
}

#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// Re-encode Q4_1/Q5_0/Q5_1 blocks as Q8_0 and run candle's model, whose SIMD kernels
    /// cover Q8_0 (CPU only). Off by default: percept's own decoder runs the file's blocks as
    /// stored, faster, while rounding every weight a second time flips llama.cpp's greedy
    /// token at near-ties (2 of 96 teacher-forced steps on SmolLM2 Q4_1, gaps 0.15 and 0.23).
    pub convert_to_q8: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            device: Device::Cpu,
            convert_to_q8: false,
        }
    }
}

enum Net {
    Native(Box<crate::native::Decoder>),
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
    Qwen3(quantized_qwen3::ModelWeights),
    Gemma3(quantized_gemma3::ModelWeights),
}

pub struct Model {
    net: Net,
    pub arch: String,
    pub context_length: usize,
    pub device: Device,
    /// How many tensors were re-encoded as Q8_0 at load.
    pub converted_tensors: usize,
    /// "percept" (the native CPU decoder) or "candle".
    pub engine: &'static str,
}

/// Whether the environment asks for candle's models even where the native decoder runs
/// (`PERCEPT_LLM_ENGINE=candle`, to compare the two).
fn candle_forced() -> bool {
    std::env::var("PERCEPT_LLM_ENGINE").is_ok_and(|v| v == "candle")
}

/// Rewrites the GGUF in memory with slow block formats turned into Q8_0.
/// A rewritten GGUF held in memory, and how many tensors were re-encoded.
type Converted = (Content, Cursor<Vec<u8>>, usize);

fn convert(gg: &mut GgufFile) -> Result<Option<Converted>> {
    let names: Vec<String> = gg
        .content
        .tensor_infos
        .iter()
        .filter(|(_, i)| needs_conversion(i.ggml_dtype))
        .map(|(n, _)| n.clone())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let all: Vec<String> = gg.content.tensor_infos.keys().cloned().collect();
    for name in &all {
        let t = gg.content.tensor(&mut gg.file, name, &Device::Cpu)?;
        let t = if needs_conversion(t.dtype()) {
            let f = t.dequantize(&Device::Cpu)?;
            QTensor::quantize(&f, GgmlDType::Q8_0)?
        } else {
            t
        };
        tensors.push((name.clone(), t));
    }
    let meta: Vec<(&str, &Value)> = gg
        .content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut buf = Cursor::new(Vec::new());
    candle_core::quantized::gguf_file::write(&mut buf, &meta, &refs)?;
    buf.set_position(0);
    let content = Content::read(&mut buf)?;
    Ok(Some((content, buf, names.len())))
}

/// Metadata candle's model builders size things from or divide by, with suffixes that match
/// under any architecture prefix: (suffix, a count of tensors rather than of weights).
const SIZED_FIELDS: &[(&str, bool)] = &[
    (".block_count", true),
    (".expert_count", true),
    (".expert_used_count", true),
    (".attention.head_count", false),
    (".attention.head_count_kv", false),
    (".embedding_length", false),
    (".feed_forward_length", false),
    (".attention.key_length", false),
    (".attention.value_length", false),
    (".rope.dimension_count", false),
];

/// Positions candle builds rotary tables for without asking the file: llama's fixed table
/// and gemma3's (its 128K context).
const CANDLE_LLAMA_ROPE_POSITIONS: u64 = 4096;
const CANDLE_GEMMA3_ROPE_POSITIONS: u64 = 131_072;

/// Rotary tables up to this many entries pass whatever the file's size (a real model's are
/// far smaller than its weights).
const ROPE_ENTRIES_FLOOR: u64 = 1 << 24;

/// The hyperparameters candle sizes tables and loops from, checked against the file before it
/// builds the model. A few KB of GGUF may claim 2^32 layers or heads of width 2^31, and candle
/// allocates from the claim before it reads a tensor (a 420 GB layer vector, 8 GB rotary
/// tables), or claim 0 heads, which it divides by (found by the `gguf` fuzz target). Bounds
/// from the file itself: no more layers or experts than tensors, no dimension larger than all
/// the weights together, at least one head, rotary tables no larger than the weights (or 16M
/// entries). Real models are far inside them.
fn check_hparams(arch: &str, content: &Content) -> Result<()> {
    let tensors = content.tensor_infos.len() as u64;
    // GgufFile::open checked that every tensor's elements fit in the file.
    let weights = content
        .tensor_infos
        .values()
        .map(|t| t.shape.elem_count() as u64)
        .fold(0, u64::saturating_add);
    let bad = |field: &str, message: String| LlmError::Metadata {
        field: field.to_string(),
        message,
    };
    // candle reads these only as u32; any other type is its error to report.
    let u32_of = |v: &Value| v.to_u32().ok().map(u64::from);
    for (key, value) in &content.metadata {
        let Some(&(suffix, per_tensor)) = SIZED_FIELDS.iter().find(|(s, _)| key.ends_with(s))
        else {
            continue;
        };
        let Some(v) = u32_of(value) else { continue };
        let (limit, what) = if per_tensor {
            (tensors, "tensors")
        } else {
            (weights, "weights")
        };
        if v > limit {
            return Err(bad(
                key,
                format!("{v} is more than the file's {limit} {what}"),
            ));
        }
        if v == 0 && suffix.contains("head_count") {
            return Err(bad(key, "a model needs at least one attention head".into()));
        }
    }
    // gemma3's builder reads the first of these prefixes that has a head count.
    let prefix = match arch {
        "gemma3" => ["gemma3", "gemma2", "gemma", "gemma-embedding"]
            .into_iter()
            .find(|p| {
                content
                    .metadata
                    .contains_key(&format!("{p}.attention.head_count"))
            })
            .unwrap_or("gemma3"),
        other => other,
    };
    let get = |k: &str| {
        content
            .metadata
            .get(&format!("{prefix}.{k}"))
            .and_then(u32_of)
    };
    let (positions, width, field) = match arch {
        "llama" => (
            Some(CANDLE_LLAMA_ROPE_POSITIONS),
            get("rope.dimension_count"),
            "rope.dimension_count",
        ),
        "qwen2" => (
            get("context_length"),
            get("embedding_length")
                .zip(get("attention.head_count"))
                .map(|(e, h)| e / h.max(1)),
            "context_length",
        ),
        "qwen3" => (
            get("context_length"),
            get("attention.key_length"),
            "context_length",
        ),
        _ => (
            Some(CANDLE_GEMMA3_ROPE_POSITIONS),
            get("attention.key_length"),
            "attention.key_length",
        ),
    };
    if let (Some(p), Some(w)) = (positions, width) {
        let limit = weights.max(ROPE_ENTRIES_FLOOR);
        if p.saturating_mul(w) > limit {
            return Err(bad(
                &format!("{prefix}.{field}"),
                format!("rotary tables of {p} positions x {w} would be larger than the model's {weights} weights"),
            ));
        }
    }
    Ok(())
}

impl Model {
    pub fn load(mut gg: GgufFile, opts: &LoadOptions) -> Result<Self> {
        let meta = gg.meta();
        let arch = meta.architecture()?.to_string();
        if !matches!(arch.as_str(), "llama" | "qwen2" | "qwen3" | "gemma3") {
            return Err(LlmError::UnsupportedArch(arch));
        }
        check_hparams(&arch, &gg.content)?;
        let context_length = meta
            .opt_u32(&format!("{arch}.context_length"))
            .map(|c| c as usize)
            .unwrap_or(CANDLE_MAX_POSITIONS)
            .min(CANDLE_MAX_POSITIONS);
        let dev = &opts.device;
        let native = dev.is_cpu()
            && !opts.convert_to_q8
            && !candle_forced()
            && crate::native::unsupported(&gg, &arch).is_none();
        if native {
            let decoder = crate::native::Decoder::load(&mut gg, &arch, context_length)?;
            return Ok(Model {
                net: Net::Native(Box::new(decoder)),
                arch,
                context_length,
                device: dev.clone(),
                converted_tensors: 0,
                engine: "percept",
            });
        }
        let converted = if opts.convert_to_q8 && dev.is_cpu() {
            convert(&mut gg)?
        } else {
            None
        };
        let (converted_tensors, net) = match converted {
            Some((content, mut cur, n)) => (n, build(&arch, content, &mut cur, dev)?),
            None => {
                let GgufFile {
                    content, mut file, ..
                } = gg;
                (0, build(&arch, content, &mut file, dev)?)
            }
        };
        Ok(Model {
            net,
            arch,
            context_length,
            device: dev.clone(),
            converted_tensors,
            engine: "candle",
        })
    }

    /// Feeds `tokens` at positions `pos..` and returns the logits after the last one (f32, vocab).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if pos == 0 {
            self.clear();
        }
        if let Net::Native(d) = &mut self.net {
            return d.forward(tokens, pos);
        }
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let logits = match &mut self.net {
            Net::Native(_) => unreachable!("fed above"),
            Net::Llama(m) => m.forward(&input, pos)?,
            Net::Qwen2(m) => m.forward(&input, pos)?,
            Net::Qwen3(m) => m.forward(&input, pos)?,
            Net::Gemma3(m) => m.forward(&input, pos)?,
        };
        let logits = logits.squeeze(0)?.to_dtype(candle_core::DType::F32)?;
        Ok(logits.to_vec1::<f32>()?)
    }

    pub fn clear(&mut self) {
        match &mut self.net {
            Net::Native(d) => d.clear(),
            Net::Llama(m) => m.clear_kv_cache(),
            Net::Qwen2(m) => m.clear_kv_cache(),
            Net::Qwen3(m) => m.clear_kv_cache(),
            // gemma3 restarts its cache when fed at position 0.
            Net::Gemma3(_) => {}
        }
    }
}

fn build<R: std::io::Read + std::io::Seek>(
    arch: &str,
    content: Content,
    r: &mut R,
    dev: &Device,
) -> Result<Net> {
    Ok(match arch {
        "llama" => Net::Llama(quantized_llama::ModelWeights::from_gguf(content, r, dev)?),
        "qwen2" => Net::Qwen2(quantized_qwen2::ModelWeights::from_gguf(content, r, dev)?),
        "qwen3" => Net::Qwen3(quantized_qwen3::ModelWeights::from_gguf(content, r, dev)?),
        "gemma3" => Net::Gemma3(quantized_gemma3::ModelWeights::from_gguf(content, r, dev)?),
        other => return Err(LlmError::UnsupportedArch(other.to_string())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::gguf_file::{TensorInfo, VersionedMagic};

    /// `tensors` f32 tensors of `elems` elements each, and `meta` as u32 values.
    fn content(meta: &[(&str, u32)], tensors: usize, elems: usize) -> Content {
        Content {
            magic: VersionedMagic::GgufV3,
            metadata: meta
                .iter()
                .map(|(k, v)| (k.to_string(), Value::U32(*v)))
                .collect(),
            tensor_infos: (0..tensors)
                .map(|i| {
                    let info = TensorInfo {
                        ggml_dtype: GgmlDType::F32,
                        shape: vec![elems].into(),
                        offset: 0,
                    };
                    (format!("t{i}"), info)
                })
                .collect(),
            tensor_data_offset: 0,
        }
    }

    fn with(base: &[(&'static str, u32)], key: &'static str, v: u32) -> Vec<(&'static str, u32)> {
        let mut m: Vec<_> = base.iter().filter(|(k, _)| *k != key).copied().collect();
        m.push((key, v));
        m
    }

    fn refused(arch: &str, c: &Content, field: &str) {
        match check_hparams(arch, c) {
            Err(LlmError::Metadata { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }

    const LLAMA: &[(&str, u32)] = &[
        ("llama.block_count", 1),
        ("llama.attention.head_count", 2),
        ("llama.attention.head_count_kv", 1),
        ("llama.embedding_length", 8),
        ("llama.rope.dimension_count", 4),
    ];

    #[test]
    fn a_small_consistent_model_passes() {
        assert!(check_hparams("llama", &content(LLAMA, 11, 64)).is_ok());
    }

    #[test]
    fn claims_the_file_cannot_back_are_refused() {
        for (key, v) in [
            ("llama.block_count", 12),
            ("llama.attention.head_count", 0),
            ("llama.attention.head_count_kv", 0),
            ("llama.embedding_length", u32::MAX),
            ("llama.rope.dimension_count", 1 << 20),
        ] {
            refused("llama", &content(&with(LLAMA, key, v), 11, 64), key);
        }
        // Any architecture prefix: gemma3's builder falls back to gemma2's keys.
        let gemma = [("gemma2.attention.head_count", 0)];
        refused(
            "gemma3",
            &content(&gemma, 1, 64),
            "gemma2.attention.head_count",
        );
        // qwen2 builds its rotary tables for the declared context.
        let qwen2 = [
            ("qwen2.embedding_length", 1024),
            ("qwen2.attention.head_count", 1),
            ("qwen2.context_length", 1 << 20),
        ];
        refused("qwen2", &content(&qwen2, 1, 4096), "qwen2.context_length");
        let ok = with(&qwen2, "qwen2.context_length", 16_384);
        assert!(check_hparams("qwen2", &content(&ok, 1, 4096)).is_ok());
    }
}
