//! The CPU decoder for llama, qwen2, qwen3 and gemma3 GGUF models, on percept-kernels:
//! quantised matrix products with activations quantised once per input and shared by the
//! matrices that read them, the LM head for the last position only, and buffers kept
//! between calls, so a generated token allocates no tensors. Other architectures, block
//! formats and devices run on candle-transformers' models (see `model.rs`).

mod load;

use crate::error::{LlmError, Result};
use crate::gguf::GgufFile;
use load::{Config, Weights};
use percept_kernels::quant::{matmul_many, QInput, QMatrix, QuantError};
use percept_kernels::rows::{
    causal_attention, f16, gelu_tanh_mul, rms_norm, silu_mul, Heads, Rope,
};

pub(crate) use load::unsupported;

/// Activations of one call, reused by the next.
#[derive(Default)]
struct Scratch {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    o: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    /// A copy of what a norm rewrites in place (per-head and post norms).
    tmp: Vec<f32>,
    input: QInput,
}

pub(crate) struct Decoder {
    c: Config,
    w: Weights,
    rope: Rope,
    /// Gemma's sliding-window layers' rotary base.
    local_rope: Option<Rope>,
    /// Per layer: keys and values of every position fed so far, rows of kv_heads x head_dim,
    /// in f16 (as llama.cpp keeps them).
    keys: Vec<Vec<f16>>,
    values: Vec<Vec<f16>>,
    s: Scratch,
}

fn kernel_error(e: QuantError) -> LlmError {
    LlmError::Model(candle_core::Error::Msg(e.to_string()))
}

/// `out = x W^T` over `rows` inputs, sized here.
fn project(w: &QMatrix, input: &QInput, out: &mut Vec<f32>) -> Result<()> {
    out.resize(input.rows() * w.rows(), 0.0);
    w.matmul(input, out).map_err(kernel_error)
}

/// Several projections of the same input, in one parallel pass for one token.
fn project_all<const N: usize>(
    ws: [&QMatrix; N],
    input: &QInput,
    outs: [&mut Vec<f32>; N],
) -> Result<()> {
    let mut pairs: Vec<(&QMatrix, &mut [f32])> = Vec::with_capacity(N);
    for (w, out) in ws.into_iter().zip(outs) {
        out.resize(input.rows() * w.rows(), 0.0);
        pairs.push((w, out.as_mut_slice()));
    }
    matmul_many(input, &mut pairs).map_err(kernel_error)
}

fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len().max(1)) {
        for (a, b) in row.iter_mut().zip(bias) {
            *a += b;
        }
    }
}

/// Keeps the first `keep` values of `cache` and appends `x` as f16.
fn append_f16(cache: &mut Vec<f16>, keep: usize, x: &[f32]) {
    use half::slice::HalfFloatSliceExt;
    cache.truncate(keep);
    cache.resize(keep + x.len(), f16::ZERO);
    cache[keep..].convert_from_f32_slice(x);
}

/// `x = rms_norm(x) * w` row by row (rows of `w.len()`), through `tmp`.
fn norm_in_place(x: &mut [f32], w: &[f32], eps: f32, tmp: &mut Vec<f32>) {
    tmp.clear();
    tmp.extend_from_slice(x);
    rms_norm(tmp, w, eps, x);
}

fn add(x: &mut [f32], y: &[f32]) {
    for (a, b) in x.iter_mut().zip(y) {
        *a += b;
    }
}

impl Decoder {
    /// `positions`: the most the model will be fed (the cache reserves room for it; memory
    /// is only touched as positions fill).
    pub(crate) fn load(gg: &mut GgufFile, arch: &str, positions: usize) -> Result<Self> {
        let c = load::config(gg, arch)?;
        let w = load::weights(gg, &c)?;
        let kv_width = c.kv_heads * c.head_dim;
        let cache = || {
            (0..c.layers)
                .map(|_| Vec::with_capacity(positions * kv_width))
                .collect()
        };
        Ok(Decoder {
            rope: Rope::new(c.head_dim, c.rope_base, c.rope_interleaved),
            local_rope: c
                .gemma
                .as_ref()
                .map(|g| Rope::new(c.head_dim, g.local_rope_base, c.rope_interleaved)),
            keys: cache(),
            values: cache(),
            s: Scratch::default(),
            c,
            w,
        })
    }

    /// Feeds `tokens` at positions `pos..` (forgetting anything cached at or after `pos`)
    /// and returns the logits after the last one.
    pub(crate) fn forward(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        // The pass runs on one of the pool's threads, so that each parallel step inside it
        // starts with that thread working and one other to wake, not all of them while the
        // caller's thread sleeps (it costs about a tenth of a small model's decoding time).
        rayon::scope(|_| self.forward_in_pool(tokens, pos))
    }

    fn forward_in_pool(&mut self, tokens: &[u32], pos: usize) -> Result<Vec<f32>> {
        let (c, w, s) = (&self.c, &self.w, &mut self.s);
        let filled = self
            .keys
            .first()
            .map_or(0, |k| k.len() / (c.kv_heads * c.head_dim));
        if tokens.is_empty() || pos > filled {
            return Err(LlmError::Tokenizer(format!(
                "{} tokens at position {pos} after {filled} cached",
                tokens.len()
            )));
        }
        let (t, d) = (tokens.len(), c.dim);
        let vocab = w.embed.rows();
        s.x.resize(t * d, 0.0);
        for (&tok, row) in tokens.iter().zip(s.x.chunks_exact_mut(d)) {
            if tok as usize >= vocab {
                return Err(LlmError::Tokenizer(format!(
                    "token {tok} of a {vocab}-token vocabulary"
                )));
            }
            w.embed
                .dequantize_row(tok as usize, row)
                .map_err(kernel_error)?;
        }
        if c.gemma.is_some() {
            let scale = (d as f32).sqrt();
            s.x.iter_mut().for_each(|v| *v *= scale);
        }
        let kv_width = c.kv_heads * c.head_dim;
        for (i, l) in w.layers.iter().enumerate() {
            s.h.resize(t * d, 0.0);
            rms_norm(&s.x, &l.attn_norm, c.eps, &mut s.h);
            s.input.set(&s.h, d);
            project_all(
                [&l.wq, &l.wk, &l.wv],
                &s.input,
                [&mut s.q, &mut s.k, &mut s.v],
            )?;
            if let Some([bq, bk, bv]) = &l.bias {
                add_rows(&mut s.q, bq);
                add_rows(&mut s.k, bk);
                add_rows(&mut s.v, bv);
            }
            if let Some(n) = &l.head_norms {
                norm_in_place(&mut s.q, &n.q, c.eps, &mut s.tmp);
                norm_in_place(&mut s.k, &n.k, c.eps, &mut s.tmp);
            }
            let window = c.window(i);
            let rope = match (&mut self.local_rope, window) {
                (Some(local), Some(_)) => local,
                _ => &mut self.rope,
            };
            rope.apply(&mut s.q, c.heads, pos);
            rope.apply(&mut s.k, c.kv_heads, pos);
            let (keys, values) = (&mut self.keys[i], &mut self.values[i]);
            append_f16(keys, pos * kv_width, &s.k);
            append_f16(values, pos * kv_width, &s.v);
            s.att.resize(s.q.len(), 0.0);
            let heads = Heads {
                heads: c.heads,
                kv_heads: c.kv_heads,
                head_dim: c.head_dim,
                scale: c.attn_scale,
                window,
            };
            causal_attention(heads, &s.q, keys, values, pos, &mut s.att);
            s.input.set(&s.att, c.heads * c.head_dim);
            project(&l.wo, &s.input, &mut s.o)?;
            if let Some(n) = &l.post_norms {
                norm_in_place(&mut s.o, &n.attn, c.eps, &mut s.tmp);
            }
            add(&mut s.x, &s.o);

            rms_norm(&s.x, &l.ffn_norm, c.eps, &mut s.h);
            s.input.set(&s.h, d);
            project_all([&l.gate, &l.up], &s.input, [&mut s.gate, &mut s.up])?;
            if c.gemma.is_some() {
                gelu_tanh_mul(&mut s.gate, &s.up);
            } else {
                silu_mul(&mut s.gate, &s.up);
            }
            s.input.set(&s.gate, c.ffn);
            project(&l.down, &s.input, &mut s.o)?;
            if let Some(n) = &l.post_norms {
                norm_in_place(&mut s.o, &n.ffn, c.eps, &mut s.tmp);
            }
            add(&mut s.x, &s.o);
        }
        // Only the last position's logits are wanted.
        let last = &s.x[(t - 1) * d..];
        s.h.resize(d, 0.0);
        rms_norm(last, &w.norm, c.eps, &mut s.h[..d]);
        s.input.set(&s.h[..d], d);
        let mut logits = Vec::new();
        project(w.output.as_ref().unwrap_or(&w.embed), &s.input, &mut logits)?;
        if let Some(cap) = c.gemma.as_ref().and_then(|g| g.softcap) {
            logits.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
        }
        Ok(logits)
    }

    pub(crate) fn clear(&mut self) {
        self.keys.iter_mut().for_each(Vec::clear);
        self.values.iter_mut().for_each(Vec::clear);
    }
}
