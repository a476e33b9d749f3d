//! Whisper encoder/decoder with incremental decoding: self-attention keys/values are cached
//! per layer and cross-attention keys/values are computed once per audio window, so each new
//! token costs one row of work instead of a re-run of the whole sequence.

use crate::weights::{Dims, Weights};
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Conv1d, Conv1dConfig, LayerNorm};
use percept_kernels::Linear;

struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

fn split_heads(x: &Tensor, heads: usize) -> Result<Tensor> {
    let (b, t, d) = x.dims3()?;
    x.reshape((b, t, heads, d / heads))?
        .transpose(1, 2)?
        .contiguous()
}

fn merge_heads(x: &Tensor) -> Result<Tensor> {
    let (b, h, t, dh) = x.dims4()?;
    x.transpose(1, 2)?.reshape((b, t, h * dh))
}

impl Attention {
    fn load(w: &mut Weights, p: &str, heads: usize) -> Result<Self> {
        Ok(Attention {
            q: w.linear(&format!("{p}.q_proj"))?,
            k: w.linear(&format!("{p}.k_proj"))?,
            v: w.linear(&format!("{p}.v_proj"))?,
            out: w.linear(&format!("{p}.out_proj"))?,
            heads,
        })
    }

    /// Q8_0 weights for the projections a decoding step runs per token (see [`Linear::into_q8`]);
    /// a cross-attention's keys and values come from the encoder once per window, so they
    /// stay f32.
    fn into_q8(self, cross: bool) -> Result<Self> {
        let (k, v) = if cross {
            (self.k, self.v)
        } else {
            (self.k.into_q8()?, self.v.into_q8()?)
        };
        Ok(Attention {
            q: self.q.into_q8()?,
            k,
            v,
            out: self.out.into_q8()?,
            heads: self.heads,
        })
    }

    /// Keys and values of `x`, split into heads: (b, h, t, dh).
    fn kv(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let k = split_heads(&self.k.forward(x)?, self.heads)?;
        let v = split_heads(&self.v.forward(x)?, self.heads)?;
        Ok((k, v))
    }

    /// Self-attention of every position of `x` over all of `x`, unmasked (the encoder's),
    /// on the fused kernel: no score matrix in memory and no head split or merge copies.
    fn attend_all(&self, x: &Tensor) -> Result<Tensor> {
        let (q, k, v) = (self.q.forward(x)?, self.k.forward(x)?, self.v.forward(x)?);
        let dh = q.dim(D::Minus1)? / self.heads;
        let scale = 1.0 / (dh as f64).sqrt();
        self.out
            .forward(&percept_kernels::attend_all(&q, &k, &v, self.heads, scale)?)
    }

    fn attend(&self, x: &Tensor, k: &Tensor, v: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let q = split_heads(&self.q.forward(x)?, self.heads)?;
        let dh = q.dim(D::Minus1)?;
        let scale = 1.0 / (dh as f64).sqrt();
        if q.dim(2)? == 1 && mask.is_none() {
            let o = percept_kernels::attend_one(&q, k, v, scale)?;
            return self.out.forward(&merge_heads(&o)?);
        }
        let q = (q * scale)?;
        let mut w = q.matmul(&k.t()?)?;
        if let Some(m) = mask {
            w = w.broadcast_add(m)?;
        }
        let w = percept_kernels::softmax_last_dim(&w)?;
        let o = merge_heads(&w.matmul(v)?)?;
        self.out.forward(&o)
    }
}

struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.fc2
            .forward(&percept_kernels::gelu_erf(&self.fc1.forward(x)?)?)
    }
}

struct Layer {
    attn_ln: LayerNorm,
    attn: Attention,
    cross: Option<(LayerNorm, Attention)>,
    mlp_ln: LayerNorm,
    mlp: Mlp,
}

impl Layer {
    fn load(w: &mut Weights, p: &str, heads: usize, cross: bool) -> Result<Self> {
        let cross = if cross {
            Some((
                w.layer_norm(&format!("{p}.encoder_attn_layer_norm"))?,
                Attention::load(w, &format!("{p}.encoder_attn"), heads)?,
            ))
        } else {
            None
        };
        Ok(Layer {
            attn_ln: w.layer_norm(&format!("{p}.self_attn_layer_norm"))?,
            attn: Attention::load(w, &format!("{p}.self_attn"), heads)?,
            cross,
            mlp_ln: w.layer_norm(&format!("{p}.final_layer_norm"))?,
            mlp: Mlp {
                fc1: w.linear(&format!("{p}.fc1"))?,
                fc2: w.linear(&format!("{p}.fc2"))?,
            },
        })
    }

    fn into_q8(self) -> Result<Self> {
        let cross = match self.cross {
            Some((ln, a)) => Some((ln, a.into_q8(true)?)),
            None => None,
        };
        Ok(Layer {
            attn: self.attn.into_q8(false)?,
            cross,
            mlp: Mlp {
                fc1: self.mlp.fc1.into_q8()?,
                fc2: self.mlp.fc2.into_q8()?,
            },
            ..self
        })
    }
}

/// How the weights are held on the CPU. By default the encoder stays f32: it runs 1500
/// positions per window as matrix-matrix products, on gemm's AVX-512 kernels where present,
/// and its projections as Q8_0 ([`Precision::Int8All`]) made tiny.en slower on 183 s of
/// speech on an AVX-512 Xeon (5.0-5.2 s against 4.7-4.8 s) and less accurate (WER 0.136
/// against 0.127).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The decoder's projections and the vocabulary projection as Q8_0 (CTranslate2's
    /// `int8` does this for the decoder): each token reads a quarter of the bytes.
    #[default]
    Int8,
    /// The encoder's projections as Q8_0 too, as CTranslate2's `int8` has them: a quarter
    /// of the encoder's weight memory, computed on percept-kernels' quantised products.
    #[serde(rename = "int8-all")]
    Int8All,
    /// Every weight as stored, computed in f32 (CTranslate2's `float32`).
    Float32,
}

/// `layers` with Q8_0 projections where `on`, as they are otherwise.
fn q8_if(on: bool, layers: Vec<Layer>) -> Result<Vec<Layer>> {
    if on {
        layers.into_iter().map(Layer::into_q8).collect()
    } else {
        Ok(layers)
    }
}

/// Per-window decoder state: cached keys/values and the number of positions consumed.
pub struct DecoderCache {
    self_kv: Vec<Option<(Tensor, Tensor)>>,
    cross_kv: Vec<(Tensor, Tensor)>,
    offset: usize,
}

impl DecoderCache {
    pub fn len(&self) -> usize {
        self.offset
    }

    pub fn is_empty(&self) -> bool {
        self.offset == 0
    }

    /// Keeps batch rows `rows` (beam search reorders hypotheses).
    pub fn reorder(&mut self, rows: &[u32]) -> Result<()> {
        let Some(dev) = self.cross_kv.first().map(|(k, _)| k.device().clone()) else {
            return Ok(());
        };
        let idx = Tensor::new(rows, &dev)?;
        for (k, v) in self.self_kv.iter_mut().flatten() {
            *k = k.index_select(&idx, 0)?;
            *v = v.index_select(&idx, 0)?;
        }
        let batch = self.cross_kv.first().map(|(k, _)| k.dim(0)).transpose()?;
        if batch != Some(rows.len()) {
            for (k, v) in self.cross_kv.iter_mut() {
                *k = k.index_select(&idx, 0)?;
                *v = v.index_select(&idx, 0)?;
            }
        }
        Ok(())
    }
}

pub struct Whisper {
    pub dims: Dims,
    conv1: Conv1d,
    conv2: Conv1d,
    enc_pos: Tensor,
    enc_layers: Vec<Layer>,
    enc_ln: LayerNorm,
    embed: Tensor,
    /// The vocabulary projection as Q8_0 on CPU: per token it reads 51864 x d weights, the
    /// largest single cost of a decoding step in f32; Q8_0 reads a quarter of the bytes and
    /// runs on percept-kernels' quantised products, as the LLM's do (candle quantises it).
    logits_q8: Option<Linear>,
    dec_pos: Tensor,
    dec_layers: Vec<Layer>,
    dec_ln: LayerNorm,
    device: Device,
}

impl Whisper {
    pub fn new(mut w: Weights, precision: Precision) -> Result<Self> {
        let dims = w.dims.clone();
        let conv = |w: &mut Weights, n: &str, stride| -> Result<Conv1d> {
            let cfg = Conv1dConfig {
                padding: 1,
                stride,
                ..Default::default()
            };
            Ok(Conv1d::new(
                w.get(&format!("model.encoder.{n}.weight"))?,
                Some(w.get(&format!("model.encoder.{n}.bias"))?),
                cfg,
            ))
        };
        let conv1 = conv(&mut w, "conv1", 1)?;
        let conv2 = conv(&mut w, "conv2", 2)?;
        let enc_pos = w.get("model.encoder.embed_positions.weight")?;
        let enc_layers = (0..dims.n_audio_layer)
            .map(|i| {
                Layer::load(
                    &mut w,
                    &format!("model.encoder.layers.{i}"),
                    dims.n_audio_head,
                    false,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let enc_ln = w.layer_norm("model.encoder.layer_norm")?;
        let embed = w.get("model.decoder.embed_tokens.weight")?;
        let dec_pos = w.get("model.decoder.embed_positions.weight")?;
        let dec_layers = (0..dims.n_text_layer)
            .map(|i| {
                Layer::load(
                    &mut w,
                    &format!("model.decoder.layers.{i}"),
                    dims.n_text_head,
                    true,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let cpu = embed.device().is_cpu();
        let int8 = precision != Precision::Float32 && cpu;
        let enc_layers = q8_if(precision == Precision::Int8All && cpu, enc_layers)?;
        let dec_layers = q8_if(int8, dec_layers)?;
        let dec_ln = w.layer_norm("model.decoder.layer_norm")?;
        let logits_q8 = if int8 {
            Some(Linear::new(embed.clone(), None).into_q8()?).filter(Linear::is_q8)
        } else {
            None
        };
        Ok(Whisper {
            logits_q8,
            device: embed.device().clone(),
            dims,
            conv1,
            conv2,
            enc_pos,
            enc_layers,
            enc_ln,
            embed,
            dec_pos,
            dec_layers,
            dec_ln,
        })
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// mel: (1, n_mels, 2 * n_audio_ctx) → audio features (1, n_audio_ctx, d).
    pub fn encode(&self, mel: &Tensor) -> Result<Tensor> {
        let x = percept_kernels::gelu_erf(&self.conv1.forward(mel)?)?;
        let x = percept_kernels::gelu_erf(&self.conv2.forward(&x)?)?;
        let x = x.transpose(1, 2)?;
        let t = x.dim(1)?;
        let mut x = x
            .broadcast_add(&self.enc_pos.narrow(0, 0, t)?)?
            .contiguous()?;
        for l in &self.enc_layers {
            let h = l.attn_ln.forward(&x)?;
            x = (x + l.attn.attend_all(&h)?)?;
            x = (&x + l.mlp.forward(&l.mlp_ln.forward(&x)?)?)?;
        }
        self.enc_ln.forward(&x)
    }

    /// Starts a decoding pass over `features` for `batch` hypotheses.
    pub fn new_cache(&self, features: &Tensor, batch: usize) -> Result<DecoderCache> {
        let mut cross_kv = Vec::with_capacity(self.dec_layers.len());
        for l in &self.dec_layers {
            if let Some((_, attn)) = &l.cross {
                let (k, v) = attn.kv(features)?;
                let (k, v) = if batch > 1 {
                    (k.repeat((batch, 1, 1, 1))?, v.repeat((batch, 1, 1, 1))?)
                } else {
                    (k, v)
                };
                cross_kv.push((k, v));
            }
        }
        Ok(DecoderCache {
            self_kv: vec![None; self.dec_layers.len()],
            cross_kv,
            offset: 0,
        })
    }

    /// Feeds `tokens` (b, s) after what the cache holds; returns hidden states (b, s, d).
    pub fn decode(&self, tokens: &Tensor, cache: &mut DecoderCache) -> Result<Tensor> {
        let (_, s) = tokens.dims2()?;
        let off = cache.offset;
        if off + s > self.dims.n_text_ctx {
            candle_core::bail!(
                "decoder context of {} tokens exceeded",
                self.dims.n_text_ctx
            );
        }
        let emb = self.embed.embedding(&tokens.flatten_all()?)?;
        let (b, _) = tokens.dims2()?;
        let emb = emb.reshape((b, s, ()))?;
        let mut x = emb.broadcast_add(&self.dec_pos.narrow(0, off, s)?)?;
        let mask = if s > 1 {
            Some(causal_mask(s, off, &self.device)?)
        } else {
            None
        };
        for (i, l) in self.dec_layers.iter().enumerate() {
            let h = l.attn_ln.forward(&x)?;
            let (k_new, v_new) = l.attn.kv(&h)?;
            let (k, v) = match cache.self_kv[i].take() {
                Some((k, v)) => (
                    Tensor::cat(&[&k, &k_new], 2)?,
                    Tensor::cat(&[&v, &v_new], 2)?,
                ),
                None => (k_new, v_new),
            };
            x = (&x + l.attn.attend(&h, &k, &v, mask.as_ref())?)?;
            cache.self_kv[i] = Some((k, v));
            if let Some((ln, attn)) = &l.cross {
                let (ck, cv) = &cache.cross_kv[i];
                x = (&x + attn.attend(&ln.forward(&x)?, ck, cv, None)?)?;
            }
            x = (&x + l.mlp.forward(&l.mlp_ln.forward(&x)?)?)?;
        }
        cache.offset += s;
        self.dec_ln.forward(&x)
    }

    /// Vocabulary logits of hidden rows (n, d) → (n, vocab), as f32.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        // (vocab, d) x (d, n) keeps the big matrix in its stored row-major layout: a strided
        // transpose of it makes the matmul copy 51864 x d floats per token.
        if let Some(q) = &self.logits_q8 {
            return q.forward(&hidden.to_dtype(DType::F32)?);
        }
        let h = hidden.t()?.contiguous()?;
        self.embed
            .matmul(&h)?
            .t()?
            .contiguous()?
            .to_dtype(DType::F32)
    }
}

fn causal_mask(s: usize, off: usize, dev: &Device) -> Result<Tensor> {
    let t = s + off;
    let m: Vec<f32> = (0..s)
        .flat_map(|i| (0..t).map(move |j| if j > i + off { f32::NEG_INFINITY } else { 0.0 }))
        .collect();
    Tensor::from_vec(m, (s, t), dev)
}
