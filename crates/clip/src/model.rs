//! CLIP's two towers in transformers' safetensors layout.
//!
//! candle-transformers' CLIP is close but not exact for every configuration: it
//! hard-codes quick_gelu for the text tower, a 1e-5 layer-norm epsilon and argmax
//! pooling. This module follows transformers' `CLIPModel` instead: activation and
//! epsilon from `config.json`, and the pooled text position is the first
//! `eos_token_id` (or, for the legacy `eos_token_id == 2`, the highest id).

use crate::config::{Activation, ClipConfig, TextConfig, VisionConfig};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor, D};
use candle_nn::{layer_norm, linear, linear_no_bias, LayerNorm, Linear, VarBuilder};

fn activate(act: Activation, xs: &Tensor) -> Result<Tensor> {
    match act {
        Activation::QuickGelu => percept_kernels::quick_gelu(xs),
        Activation::Gelu => percept_kernels::gelu_erf(xs),
    }
}

/// Self-attention with q, k and v fused into one projection at load (one matmul and
/// one head split instead of three), and the `head_dim^-0.5` scale folded into q.
struct Attention {
    qkv: Linear,
    out: Linear,
    heads: usize,
    head_dim: usize,
}

impl Attention {
    fn new(vb: VarBuilder, hidden: usize, heads: usize) -> Result<Self> {
        let head_dim = hidden / heads;
        let scale = (head_dim as f64).powf(-0.5);
        let part = |name: &str, scale: f64| -> Result<(Tensor, Tensor)> {
            let vb = vb.pp(name);
            let w = (vb.get((hidden, hidden), "weight")? * scale)?;
            let b = (vb.get(hidden, "bias")? * scale)?;
            Ok((w, b))
        };
        let (qw, qb) = part("q_proj", scale)?;
        let (kw, kb) = part("k_proj", 1.0)?;
        let (vw, vb_) = part("v_proj", 1.0)?;
        let qkv = Linear::new(
            Tensor::cat(&[qw, kw, vw], 0)?,
            Some(Tensor::cat(&[qb, kb, vb_], 0)?),
        );
        Ok(Attention {
            qkv,
            out: linear(hidden, hidden, vb.pp("out_proj"))?,
            heads,
            head_dim,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, s, hidden) = xs.dims3()?;
        // [b, s, 3h] -> [3, b, heads, s, head_dim] in one copy.
        let qkv = self
            .qkv
            .forward(xs)?
            .reshape((b, s, 3, self.heads, self.head_dim))?
            .permute((2, 0, 3, 1, 4))?
            .contiguous()?;
        let (q, k, v) = (qkv.i(0)?, qkv.i(1)?, qkv.i(2)?);
        let mut w = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            w = w.broadcast_add(m)?;
        }
        let w = percept_kernels::softmax_last_dim(&w)?;
        let o = w.matmul(&v)?.transpose(1, 2)?.reshape((b, s, hidden))?;
        self.out.forward(&o)
    }
}

struct EncoderLayer {
    attn: Attention,
    ln1: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    ln2: LayerNorm,
    act: Activation,
}

impl EncoderLayer {
    fn new(
        vb: VarBuilder,
        hidden: usize,
        inter: usize,
        heads: usize,
        eps: f64,
        act: Activation,
    ) -> Result<Self> {
        Ok(EncoderLayer {
            attn: Attention::new(vb.pp("self_attn"), hidden, heads)?,
            ln1: layer_norm(hidden, eps, vb.pp("layer_norm1"))?,
            fc1: linear(hidden, inter, vb.pp("mlp").pp("fc1"))?,
            fc2: linear(inter, hidden, vb.pp("mlp").pp("fc2"))?,
            ln2: layer_norm(hidden, eps, vb.pp("layer_norm2"))?,
            act,
        })
    }

    fn forward(&self, xs: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let h = (self.attn.forward(&self.ln1.forward(xs)?, mask)? + xs)?;
        let m = activate(self.act, &self.fc1.forward(&self.ln2.forward(&h)?)?)?;
        self.fc2.forward(&m)? + h
    }
}

fn encoder(
    vb: VarBuilder,
    n: usize,
    hidden: usize,
    inter: usize,
    heads: usize,
    eps: f64,
    act: Activation,
) -> Result<Vec<EncoderLayer>> {
    let vb = vb.pp("encoder").pp("layers");
    (0..n)
        .map(|i| EncoderLayer::new(vb.pp(i), hidden, inter, heads, eps, act))
        .collect()
}

pub struct VisionTower {
    /// The patch convolution's kernel as `[channels * patch^2, hidden]`: with stride equal
    /// to the kernel size the convolution is one matmul over non-overlapping patches,
    /// about twice as fast as candle's im2col convolution.
    patch: Tensor,
    patch_size: usize,
    class_embedding: Tensor,
    positions: Tensor,
    pre_ln: LayerNorm,
    layers: Vec<EncoderLayer>,
    post_ln: LayerNorm,
}

impl VisionTower {
    fn new(vb: VarBuilder, c: &VisionConfig) -> Result<Self> {
        let e = vb.pp("embeddings");
        let n_pos = (c.image_size / c.patch_size).pow(2) + 1;
        Ok(VisionTower {
            patch: e
                .pp("patch_embedding")
                .get(
                    (c.hidden_size, c.num_channels, c.patch_size, c.patch_size),
                    "weight",
                )?
                .flatten_from(1)?
                .t()?
                .contiguous()?,
            patch_size: c.patch_size,
            class_embedding: e.get(c.hidden_size, "class_embedding")?,
            positions: e
                .pp("position_embedding")
                .get((n_pos, c.hidden_size), "weight")?,
            pre_ln: layer_norm(c.hidden_size, c.layer_norm_eps, vb.pp("pre_layrnorm"))?,
            layers: encoder(
                vb.clone(),
                c.num_hidden_layers,
                c.hidden_size,
                c.intermediate_size,
                c.num_attention_heads,
                c.layer_norm_eps,
                c.hidden_act,
            )?,
            post_ln: layer_norm(c.hidden_size, c.layer_norm_eps, vb.pp("post_layernorm"))?,
        })
    }

    /// `pixels`: `[batch, 3, size, size]` -> pooled `[batch, hidden]`.
    fn forward(&self, pixels: &Tensor) -> Result<Tensor> {
        let (b, ch, h, w) = pixels.dims4()?;
        let p = self.patch_size;
        let (gh, gw) = (h / p, w / p);
        let patches = pixels
            .narrow(2, 0, gh * p)?
            .narrow(3, 0, gw * p)?
            .reshape((b, ch, gh, p, gw, p))?
            .permute((0, 2, 4, 1, 3, 5))?
            .contiguous()?
            .reshape((b * gh * gw, ch * p * p))?
            .matmul(&self.patch)?
            .reshape((b, gh * gw, ()))?;
        let hidden = self.class_embedding.dim(0)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, hidden))?
            .repeat((b, 1, 1))?;
        let mut xs = Tensor::cat(&[cls, patches], 1)?.broadcast_add(&self.positions)?;
        xs = self.pre_ln.forward(&xs)?;
        for l in &self.layers {
            xs = l.forward(&xs, None)?;
        }
        self.post_ln.forward(&xs.i((.., 0, ..))?)
    }
}

pub struct TextTower {
    token_embedding: candle_nn::Embedding,
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    final_ln: LayerNorm,
    eos_token_id: u32,
}

impl TextTower {
    fn new(vb: VarBuilder, c: &TextConfig) -> Result<Self> {
        let e = vb.pp("embeddings");
        Ok(TextTower {
            token_embedding: candle_nn::embedding(
                c.vocab_size,
                c.hidden_size,
                e.pp("token_embedding"),
            )?,
            positions: e
                .pp("position_embedding")
                .get((c.max_position_embeddings, c.hidden_size), "weight")?,
            layers: encoder(
                vb.clone(),
                c.num_hidden_layers,
                c.hidden_size,
                c.intermediate_size,
                c.num_attention_heads,
                c.layer_norm_eps,
                c.hidden_act,
            )?,
            final_ln: layer_norm(c.hidden_size, c.layer_norm_eps, vb.pp("final_layer_norm"))?,
            eos_token_id: c.eos_token_id,
        })
    }

    /// Where transformers reads the pooled output of each sequence.
    fn pool_positions(&self, ids: &[Vec<u32>]) -> Vec<usize> {
        ids.iter()
            .map(|seq| {
                if self.eos_token_id == 2 {
                    // First occurrence of the highest id, like torch.argmax.
                    let max = seq.iter().copied().max().unwrap_or(0);
                    seq.iter().position(|&t| t == max).unwrap_or(0)
                } else {
                    seq.iter()
                        .position(|&t| t == self.eos_token_id)
                        .unwrap_or(0)
                }
            })
            .collect()
    }

    /// Token id sequences (any lengths up to the context) -> pooled `[batch, hidden]`.
    /// Sequences are cut after their pooled position and padded with copies of it: the
    /// causal mask means later positions never change earlier ones, so the result is
    /// identical to running the full padded context, only cheaper.
    fn forward(&self, ids: &[Vec<u32>], device: &Device) -> Result<Tensor> {
        let pool = self.pool_positions(ids);
        let len = pool.iter().map(|p| p + 1).max().unwrap_or(1);
        let mut flat = Vec::with_capacity(ids.len() * len);
        for (seq, &p) in ids.iter().zip(&pool) {
            for i in 0..len {
                flat.push(seq.get(i.min(p)).copied().unwrap_or(0));
            }
        }
        let b = ids.len();
        let tokens = Tensor::from_vec(flat, (b, len), device)?;
        let mut xs = self
            .token_embedding
            .forward(&tokens)?
            .broadcast_add(&self.positions.narrow(0, 0, len)?)?;
        let mask: Vec<f32> = (0..len)
            .flat_map(|i| (0..len).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (1, 1, len, len), device)?.to_dtype(xs.dtype())?;
        for l in &self.layers {
            xs = l.forward(&xs, Some(&mask))?;
        }
        let xs = self.final_ln.forward(&xs)?;
        let rows = pool
            .iter()
            .enumerate()
            .map(|(bi, &p)| xs.i((bi, p)))
            .collect::<Result<Vec<_>>>()?;
        Tensor::stack(&rows, 0)
    }
}

/// Both towers with their projections; embeddings are returned unnormalised, exactly
/// as transformers' `get_image_features` / `get_text_features`.
pub struct ClipModel {
    pub vision: VisionTower,
    pub text: TextTower,
    visual_projection: Linear,
    text_projection: Linear,
    /// `exp(logit_scale)`, the temperature applied to cosine similarities.
    pub logit_scale: f32,
    pub config: ClipConfig,
    device: Device,
}

impl ClipModel {
    pub fn new(vb: VarBuilder, config: &ClipConfig) -> Result<Self> {
        let v = &config.vision_config;
        let t = &config.text_config;
        let logit_scale = if vb.contains_tensor("logit_scale") {
            vb.get((), "logit_scale")?
                .to_dtype(DType::F32)?
                .to_scalar::<f32>()?
        } else {
            config.logit_scale_init_value
        };
        Ok(ClipModel {
            vision: VisionTower::new(vb.pp("vision_model"), v)?,
            text: TextTower::new(vb.pp("text_model"), t)?,
            visual_projection: linear_no_bias(
                v.hidden_size,
                config.projection_dim,
                vb.pp("visual_projection"),
            )?,
            text_projection: linear_no_bias(
                t.hidden_size,
                config.projection_dim,
                vb.pp("text_projection"),
            )?,
            logit_scale: logit_scale.exp(),
            config: config.clone(),
            device: vb.device().clone(),
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `[batch, 3, H, W]` normalised pixels -> `[batch, projection_dim]`.
    pub fn image_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.visual_projection
            .forward(&self.vision.forward(pixels)?)
    }

    /// Token id sequences (each with start and end tokens) -> `[batch, projection_dim]`.
    pub fn text_features(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        self.text_projection
            .forward(&self.text.forward(ids, &self.device)?)
    }
}

/// Rows scaled to unit length.
pub fn l2_normalize(xs: &Tensor) -> Result<Tensor> {
    xs.broadcast_div(&xs.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)
}
