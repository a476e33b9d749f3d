//! Reading a llama, qwen2, qwen3 or gemma3 GGUF into the native decoder's weights: matrices
//! keep their block bytes as stored, norms and biases become f32.

use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use percept_kernels::quant::{Format, QMatrix};
use std::io::{Read, Seek, SeekFrom};

/// The hyperparameters the forward pass needs, checked against the tensors' shapes.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub layers: usize,
    pub dim: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub ffn: usize,
    pub eps: f32,
    pub rope_base: f32,
    /// GGUF llama's Q/K rows are permuted for rotation of adjacent pairs; qwen2's are not.
    pub rope_interleaved: bool,
    /// What attention scores are multiplied by.
    pub attn_scale: f32,
    /// Per-head query and key norms before rotation (qwen3, gemma3).
    pub head_norms: bool,
    pub gemma: Option<Gemma>,
}

/// What Gemma 3 adds, as llama.cpp runs it: embeddings scaled by `sqrt(dim)`, RMS norms on
/// each head's queries and keys and after attention and the feed-forward, a GELU gate, and
/// sliding-window attention with its own rotary base on all but every `pattern`-th layer.
#[derive(Clone, Debug)]
pub(crate) struct Gemma {
    /// Without a window every layer attends to every position, as in llama.cpp.
    pub window: Option<usize>,
    pub pattern: usize,
    pub local_rope_base: f32,
    /// `cap * tanh(logit / cap)` on the output, where the file asks for it.
    pub softcap: Option<f32>,
}

impl Config {
    /// The window of layer `i`'s attention: `None` attends to every position.
    pub fn window(&self, i: usize) -> Option<usize> {
        let g = self.gemma.as_ref()?;
        let sliding = g.pattern == 0 || i % g.pattern < g.pattern - 1;
        g.window.filter(|_| sliding)
    }
}

/// RMS norms over each head's queries and keys, before rotation (qwen3, gemma3).
pub(crate) struct HeadNorms {
    pub q: Vec<f32>,
    pub k: Vec<f32>,
}

/// Gemma 3's norms after attention and after the feed-forward, before each residual add.
pub(crate) struct PostNorms {
    pub attn: Vec<f32>,
    pub ffn: Vec<f32>,
}

pub(crate) struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: QMatrix,
    pub wk: QMatrix,
    pub wv: QMatrix,
    /// qwen2's projection biases (q, k, v).
    pub bias: Option<[Vec<f32>; 3]>,
    pub wo: QMatrix,
    pub ffn_norm: Vec<f32>,
    pub gate: QMatrix,
    pub up: QMatrix,
    pub down: QMatrix,
    pub head_norms: Option<HeadNorms>,
    pub post_norms: Option<PostNorms>,
}

pub(crate) struct Weights {
    pub embed: QMatrix,
    /// None: the output projection is the embedding (tied).
    pub output: Option<QMatrix>,
    pub norm: Vec<f32>,
    pub layers: Vec<Layer>,
}

fn format_of(t: GgmlDType) -> Option<Format> {
    Some(match t {
        GgmlDType::Q4_0 => Format::Q4_0,
        GgmlDType::Q4_1 => Format::Q4_1,
        GgmlDType::Q5_0 => Format::Q5_0,
        GgmlDType::Q5_1 => Format::Q5_1,
        GgmlDType::Q8_0 => Format::Q8_0,
        GgmlDType::Q4K => Format::Q4K,
        GgmlDType::Q5K => Format::Q5K,
        GgmlDType::Q6K => Format::Q6K,
        _ => return None,
    })
}

fn matrix_names(layers: usize) -> impl Iterator<Item = String> {
    const PER_LAYER: [&str; 7] = [
        "attn_q",
        "attn_k",
        "attn_v",
        "attn_output",
        "ffn_gate",
        "ffn_up",
        "ffn_down",
    ];
    (0..layers)
        .flat_map(move |i| PER_LAYER.iter().map(move |n| format!("blk.{i}.{n}.weight")))
        .chain(["token_embd.weight".to_string(), "output.weight".to_string()])
}

/// Why the native decoder cannot run this file, if it cannot (the model then runs on
/// candle's): another architecture, a block format without a kernel, or a partial rotary.
pub(crate) fn unsupported(gg: &GgufFile, arch: &str) -> Option<String> {
    if !matches!(arch, "llama" | "qwen2" | "qwen3" | "gemma3") {
        return Some(format!("architecture {arch}"));
    }
    let meta = gg.meta();
    if arch == "gemma3" {
        let field = |k: &str| meta.get(&format!("gemma3.{k}"));
        // Linear rotary scaling (the larger Gemma 3 models) is not implemented here.
        if let Some(f) = field("rope.scaling.factor") {
            if f.to_f32().map_or(true, |f| f != 1.0) {
                return Some("gemma3 rotary scaling".into());
            }
        }
        if field("attention.sliding_window_pattern").is_some_and(|v| v.to_u32().is_err()) {
            return Some("gemma3 sliding-window pattern given per layer".into());
        }
        if meta.opt_u32("gemma3.attention.key_length")
            != meta.opt_u32("gemma3.attention.value_length")
        {
            return Some("gemma3 keys and values of different widths".into());
        }
    }
    // Hyperparameters under another prefix (gemma3 files written with gemma2's keys) are
    // left to candle's builders, which look further.
    let Some(layers) = meta.opt_u32(&format!("{arch}.block_count")) else {
        return Some(format!("no {arch}.block_count"));
    };
    let layers = layers as usize;
    for name in matrix_names(layers) {
        match gg.content.tensor_infos.get(&name) {
            Some(info) if format_of(info.ggml_dtype).is_none() => {
                return Some(format!("{name} is {:?}", info.ggml_dtype))
            }
            _ => {}
        }
    }
    let heads = meta
        .opt_u32(&format!("{arch}.attention.head_count"))?
        .max(1);
    let dim = meta.opt_u32(&format!("{arch}.embedding_length"))?;
    let head_dim = meta
        .opt_u32(&format!("{arch}.attention.key_length"))
        .unwrap_or(dim / heads);
    match meta.opt_u32(&format!("{arch}.rope.dimension_count")) {
        Some(r) if r != head_dim => Some(format!("rotary over {r} of {head_dim} dimensions")),
        _ => None,
    }
}

fn bad(gg: &GgufFile, message: String) -> LlmError {
    LlmError::Gguf {
        path: gg.path.clone(),
        message,
    }
}

fn f32_field(gg: &GgufFile, field: &str, default: f32) -> f32 {
    gg.meta()
        .get(field)
        .and_then(|v| v.to_f32().ok())
        .unwrap_or(default)
}

pub(crate) fn config(gg: &GgufFile, arch: &str) -> Result<Config> {
    let meta = gg.meta();
    let need = |k: &str| {
        let field = format!("{arch}.{k}");
        meta.opt_u32(&field)
            .map(|v| v as usize)
            .ok_or(LlmError::Metadata {
                field,
                message: "missing".into(),
            })
    };
    let (dim, heads) = (need("embedding_length")?, need("attention.head_count")?);
    let kv_heads = need("attention.head_count_kv").unwrap_or(heads);
    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(LlmError::Metadata {
            field: format!("{arch}.attention.head_count_kv"),
            message: format!("{kv_heads} key/value heads for {heads} query heads"),
        });
    }
    let layers = need("block_count")?;
    let head_dim = need("attention.key_length").unwrap_or(dim / heads);
    // Zero-width heads would be split into zero-length chunks.
    if head_dim == 0 {
        return Err(LlmError::Metadata {
            field: format!("{arch}.attention.key_length"),
            message: "heads of width 0".into(),
        });
    }
    let gemma = (arch == "gemma3").then(|| Gemma {
        window: need("attention.sliding_window").ok().filter(|&w| w > 0),
        pattern: need("attention.sliding_window_pattern").unwrap_or(6),
        local_rope_base: f32_field(gg, "gemma3.rope.local_freq_base", 10_000.0),
        softcap: Some(f32_field(gg, "gemma3.final_logit_softcapping", 0.0)).filter(|&c| c > 0.0),
    });
    // As llama.cpp (after gemma_pytorch): the 27B model (62 layers) scales by its width per
    // head, every other model by the head's size.
    let attn_scale = if gemma.is_some() && layers == 62 {
        1.0 / ((dim / heads) as f32).sqrt()
    } else {
        1.0 / (head_dim as f32).sqrt()
    };
    Ok(Config {
        layers,
        dim,
        heads,
        kv_heads,
        head_dim,
        ffn: need("feed_forward_length")?,
        eps: f32_field(
            gg,
            &format!("{arch}.attention.layer_norm_rms_epsilon"),
            1e-5,
        ),
        rope_base: f32_field(gg, &format!("{arch}.rope.freq_base"), 10_000.0),
        rope_interleaved: arch == "llama",
        attn_scale,
        head_norms: matches!(arch, "qwen3" | "gemma3"),
        gemma,
    })
}

/// The tensor's bytes as stored, after checking it is `rows x cols` in a kernel's format.
fn matrix(gg: &mut GgufFile, name: &str, rows: usize, cols: usize) -> Result<QMatrix> {
    let info = gg
        .content
        .tensor_infos
        .get(name)
        .ok_or_else(|| bad(gg, format!("tensor `{name}` is missing")))?;
    let (dtype, dims, offset) = (info.ggml_dtype, info.shape.dims().to_vec(), info.offset);
    if dims != [rows, cols] {
        return Err(bad(
            gg,
            format!("tensor `{name}` is {dims:?}, expected [{rows}, {cols}]"),
        ));
    }
    let format = format_of(dtype).ok_or_else(|| LlmError::UnsupportedQuant {
        tensor: name.to_string(),
        dtype: format!("{dtype:?}"),
    })?;
    let len = rows * cols / dtype.block_size() * dtype.type_size();
    let mut data = vec![0u8; len];
    let start = gg.content.tensor_data_offset + offset;
    let read = gg
        .file
        .seek(SeekFrom::Start(start))
        .and_then(|_| gg.file.read_exact(&mut data));
    read.map_err(|source| LlmError::Io {
        path: gg.path.clone(),
        source,
    })?;
    QMatrix::new(name, format, rows, cols, data).map_err(|e| bad(gg, e.to_string()))
}

fn vector(gg: &mut GgufFile, name: &str, len: usize) -> Result<Vec<f32>> {
    if !gg.content.tensor_infos.contains_key(name) {
        return Err(bad(gg, format!("tensor `{name}` is missing")));
    }
    let t = gg.content.tensor(&mut gg.file, name, &Device::Cpu)?;
    let v = t
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if v.len() != len {
        return Err(bad(
            gg,
            format!("tensor `{name}` has {} values, expected {len}", v.len()),
        ));
    }
    Ok(v)
}

pub(crate) fn weights(gg: &mut GgufFile, c: &Config) -> Result<Weights> {
    let vocab = gg
        .content
        .tensor_infos
        .get("token_embd.weight")
        .and_then(|i| i.shape.dims().first().copied())
        .ok_or_else(|| bad(gg, "tensor `token_embd.weight` is missing".into()))?;
    let (q_width, kv_width) = (c.heads * c.head_dim, c.kv_heads * c.head_dim);
    let mut layers = Vec::with_capacity(c.layers);
    for i in 0..c.layers {
        let n = |s: &str| format!("blk.{i}.{s}");
        let bias = if gg.content.tensor_infos.contains_key(&n("attn_q.bias")) {
            Some([
                vector(gg, &n("attn_q.bias"), q_width)?,
                vector(gg, &n("attn_k.bias"), kv_width)?,
                vector(gg, &n("attn_v.bias"), kv_width)?,
            ])
        } else {
            None
        };
        layers.push(Layer {
            attn_norm: vector(gg, &n("attn_norm.weight"), c.dim)?,
            wq: matrix(gg, &n("attn_q.weight"), q_width, c.dim)?,
            wk: matrix(gg, &n("attn_k.weight"), kv_width, c.dim)?,
            wv: matrix(gg, &n("attn_v.weight"), kv_width, c.dim)?,
            bias,
            wo: matrix(gg, &n("attn_output.weight"), c.dim, q_width)?,
            ffn_norm: vector(gg, &n("ffn_norm.weight"), c.dim)?,
            gate: matrix(gg, &n("ffn_gate.weight"), c.ffn, c.dim)?,
            up: matrix(gg, &n("ffn_up.weight"), c.ffn, c.dim)?,
            down: matrix(gg, &n("ffn_down.weight"), c.dim, c.ffn)?,
            head_norms: match c.head_norms {
                true => Some(HeadNorms {
                    q: vector(gg, &n("attn_q_norm.weight"), c.head_dim)?,
                    k: vector(gg, &n("attn_k_norm.weight"), c.head_dim)?,
                }),
                false => None,
            },
            post_norms: match c.gemma {
                Some(_) => Some(PostNorms {
                    attn: vector(gg, &n("post_attention_norm.weight"), c.dim)?,
                    ffn: vector(gg, &n("post_ffw_norm.weight"), c.dim)?,
                }),
                None => None,
            },
        });
    }
    let output = if gg.content.tensor_infos.contains_key("output.weight") {
        Some(matrix(gg, "output.weight", vocab, c.dim)?)
    } else {
        None
    };
    Ok(Weights {
        embed: matrix(gg, "token_embd.weight", vocab, c.dim)?,
        output,
        norm: vector(gg, "output_norm.weight", c.dim)?,
        layers,
    })
}
