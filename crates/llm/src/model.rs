//! The decoder network, picked by `general.architecture`, on candle's quantized models.

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
    /// Re-encode Q4_1/Q5_0/Q5_1 blocks as Q8_0 so candle's SIMD kernels run them (CPU only).
    /// Off by default: rounding every weight a second time flips llama.cpp's greedy token at
    /// near-ties (2 of 96 teacher-forced steps on SmolLM2 Q4_1, gaps 0.15 and 0.23; see
    /// tests/llama_cpp_parity.rs), while the file as stored matches at every step. On, prefill
    /// is about 1.5x faster and decode about the same.
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

impl Model {
    pub fn load(mut gg: GgufFile, opts: &LoadOptions) -> Result<Self> {
        let meta = gg.meta();
        let arch = meta.architecture()?.to_string();
        if !matches!(arch.as_str(), "llama" | "qwen2" | "qwen3" | "gemma3") {
            return Err(LlmError::UnsupportedArch(arch));
        }
        let context_length = meta
            .opt_u32(&format!("{arch}.context_length"))
            .map(|c| c as usize)
            .unwrap_or(CANDLE_MAX_POSITIONS)
            .min(CANDLE_MAX_POSITIONS);
        let dev = &opts.device;
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
        })
    }

    /// Feeds `tokens` at positions `pos..` and returns the logits after the last one (f32, vocab).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        if pos == 0 {
            self.clear();
        }
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let logits = match &mut self.net {
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
