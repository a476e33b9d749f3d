//! Reader for CTranslate2 `model.bin` Whisper files: tensors are renamed to the Hugging Face
//! layout and the fused projections are split, so one model builder serves both formats.

use crate::WhisperError;
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;
use std::path::Path;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    path: &'a str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WhisperError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(WhisperError::Model {
                path: self.path.to_string(),
                reason: format!("truncated while reading {what} at byte {}", self.pos),
            });
        };
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, WhisperError> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16, WhisperError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, WhisperError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self, what: &str) -> Result<String, WhisperError> {
        let n = self.u16(what)? as usize;
        let b = self.take(n, what)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        Ok(String::from_utf8_lossy(b).into_owned())
    }
}

/// A raw variable as stored in the file.
struct RawVar<'a> {
    shape: Vec<usize>,
    dtype: u8,
    bytes: &'a [u8],
}

fn to_tensor(v: &RawVar, name: &str, path: &str, dev: &Device) -> Result<Tensor, WhisperError> {
    let bad = |reason: String| WhisperError::Model {
        path: path.to_string(),
        reason: format!("{name}: {reason}"),
    };
    // Checked: a shape whose product wraps (to 0, say) would match a short buffer and give
    // a tensor claiming more elements than it holds (a crafted input to the `ct2` fuzz target).
    // The product of the non-zero dimensions must fit too: candle computes strides from the
    // last dimension, and [0, 2^40, 2^40] has no elements but strides that overflow.
    let too_many = || bad(format!("shape {:?} has too many elements", v.shape));
    v.shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(too_many)?;
    let n = v
        .shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .ok_or_else(too_many)?;
    let (dtype, width) = match v.dtype {
        0 => (DType::F32, 4),
        1 => (DType::U8, 1),
        2 => (DType::F32, 2),
        3 => (DType::F32, 4),
        4 => (DType::F16, 2),
        5 => (DType::BF16, 2),
        d => return Err(bad(format!("unsupported dtype code {d}"))),
    };
    if n.checked_mul(width) != Some(v.bytes.len()) {
        return Err(bad(format!(
            "{} bytes for shape {:?}",
            v.bytes.len(),
            v.shape
        )));
    }
    let t = match v.dtype {
        // Integer scalars (head counts) become f32 so callers read them uniformly.
        1 => Tensor::from_vec(
            v.bytes.iter().map(|&b| b as i8 as f32).collect::<Vec<_>>(),
            v.shape.clone(),
            dev,
        ),
        2 => Tensor::from_vec(
            v.bytes
                .chunks_exact(2)
                .map(|c| i16::from_le_bytes([c[0], c[1]]) as f32)
                .collect::<Vec<_>>(),
            v.shape.clone(),
            dev,
        ),
        3 => Tensor::from_vec(
            v.bytes
                .chunks_exact(4)
                .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
                .collect::<Vec<_>>(),
            v.shape.clone(),
            dev,
        ),
        // Weights compute in f32 on CPU; converting here frees the f16 copy at once.
        _ => Tensor::from_raw_buffer(v.bytes, dtype, &v.shape, dev)
            .and_then(|t| t.to_dtype(DType::F32)),
    };
    t.map_err(|e| bad(e.to_string()))
}

/// Maps a CTranslate2 name to its Hugging Face name (without fused-split suffixes).
fn hf_name(ct: &str) -> Option<String> {
    let (stack, rest) = ct.split_once('/')?;
    if stack != "encoder" && stack != "decoder" {
        return None;
    }
    let leaf = |s: &str| match s {
        "gamma" => "weight".to_string(),
        "beta" => "bias".to_string(),
        other => other.to_string(),
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let out = match parts.as_slice() {
        ["conv1", p] | ["conv2", p] => format!("{}.{}", parts[0], p),
        ["position_encodings", "encodings"] => "embed_positions.weight".into(),
        ["embeddings", "weight"] => "embed_tokens.weight".into(),
        ["layer_norm", p] => format!("layer_norm.{}", leaf(p)),
        [layer, rest @ ..] if layer.starts_with("layer_") => {
            let i = layer.trim_start_matches("layer_");
            let sub = match rest {
                ["self_attention", "layer_norm", p] => format!("self_attn_layer_norm.{}", leaf(p)),
                ["self_attention", "linear_0", p] => format!("self_attn.qkv.{p}"),
                ["self_attention", "linear_1", p] => format!("self_attn.out_proj.{p}"),
                ["attention", "layer_norm", p] => format!("encoder_attn_layer_norm.{}", leaf(p)),
                ["attention", "linear_0", p] => format!("encoder_attn.q_proj.{p}"),
                ["attention", "linear_1", p] => format!("encoder_attn.kv.{p}"),
                ["attention", "linear_2", p] => format!("encoder_attn.out_proj.{p}"),
                ["ffn", "layer_norm", p] => format!("final_layer_norm.{}", leaf(p)),
                ["ffn", "linear_0", p] => format!("fc1.{p}"),
                ["ffn", "linear_1", p] => format!("fc2.{p}"),
                _ => return None,
            };
            format!("layers.{i}.{sub}")
        }
        _ => return None,
    };
    Some(format!("model.{stack}.{out}"))
}

/// Everything read from a model.bin: HF-named tensors plus the scalar head counts.
pub struct Ct2Weights {
    pub tensors: HashMap<String, Tensor>,
    pub encoder_heads: usize,
    pub decoder_heads: usize,
}

pub fn load(path: &Path, dev: &Device) -> Result<Ct2Weights, WhisperError> {
    let name = path.display().to_string();
    let data = std::fs::read(path).map_err(|e| WhisperError::Model {
        path: name.clone(),
        reason: e.to_string(),
    })?;
    let mut c = Cursor {
        buf: &data,
        pos: 0,
        path: &name,
    };
    let version = c.u32("version")?;
    if !(4..=6).contains(&version) {
        return Err(WhisperError::Model {
            path: name,
            reason: format!("unsupported CTranslate2 format version {version}"),
        });
    }
    let spec = c.string("spec name")?;
    let _revision = c.u32("spec revision")?;
    if !spec.contains("Whisper") {
        return Err(WhisperError::Model {
            path: name,
            reason: format!("model spec is {spec}, not Whisper"),
        });
    }
    let count = c.u32("variable count")?;
    let mut raw: HashMap<String, RawVar> = HashMap::new();
    for _ in 0..count {
        let vname = c.string("variable name")?;
        let rank = c.u8("rank")? as usize;
        let mut shape = Vec::with_capacity(rank);
        for _ in 0..rank {
            shape.push(c.u32("shape")? as usize);
        }
        let dtype = c.u8("dtype")?;
        let nbytes = c.u32("byte length")? as usize;
        let bytes = c.take(nbytes, &vname)?;
        raw.insert(
            vname,
            RawVar {
                shape,
                dtype,
                bytes,
            },
        );
    }
    let scalar = |key: &str| -> Result<usize, WhisperError> {
        let v = raw.get(key).ok_or_else(|| WhisperError::Model {
            path: name.clone(),
            reason: format!("missing {key}"),
        })?;
        let t = to_tensor(v, key, &name, dev)?;
        let x = t
            .flatten_all()
            .and_then(|t| t.to_dtype(DType::F32))
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(|e| WhisperError::Model {
                path: name.clone(),
                reason: format!("{key}: {e}"),
            })?;
        x.first()
            .map(|&h| h as usize)
            .ok_or_else(|| WhisperError::Model {
                path: name.clone(),
                reason: format!("{key} is empty"),
            })
    };
    let encoder_heads = scalar("encoder/num_heads")?;
    let decoder_heads = scalar("decoder/num_heads")?;
    let mut tensors = HashMap::new();
    for (k, v) in &raw {
        let Some(hf) = hf_name(k) else { continue };
        let t = to_tensor(v, k, &name, dev)?;
        let split = |t: &Tensor, n: usize| -> Result<Vec<Tensor>, WhisperError> {
            let rows = t.dim(0).map_err(|e| WhisperError::Model {
                path: name.clone(),
                reason: e.to_string(),
            })?;
            t.chunk(n, 0)
                .ok()
                .filter(|parts| parts.len() == n && rows % n == 0)
                .ok_or_else(|| WhisperError::Model {
                    path: name.clone(),
                    reason: format!("{k}: {rows} rows do not split in {n}"),
                })
        };
        if let Some(prefix) = hf.strip_suffix(".weight").or(hf.strip_suffix(".bias")) {
            let leaf = if hf.ends_with(".weight") {
                "weight"
            } else {
                "bias"
            };
            if let Some(base) = prefix.strip_suffix(".qkv") {
                let p = split(&t, 3)?;
                for (part, proj) in p.into_iter().zip(["q_proj", "k_proj", "v_proj"]) {
                    tensors.insert(format!("{base}.{proj}.{leaf}"), part);
                }
                continue;
            }
            if let Some(base) = prefix.strip_suffix(".kv") {
                let p = split(&t, 2)?;
                for (part, proj) in p.into_iter().zip(["k_proj", "v_proj"]) {
                    tensors.insert(format!("{base}.{proj}.{leaf}"), part);
                }
                continue;
            }
        }
        tensors.insert(hf, t);
    }
    Ok(Ct2Weights {
        tensors,
        encoder_heads,
        decoder_heads,
    })
}

#[cfg(test)]
mod tests {
    use super::hf_name;

    #[test]
    fn names_map_to_hugging_face_layout() {
        let cases = [
            ("encoder/conv1/weight", "model.encoder.conv1.weight"),
            (
                "decoder/embeddings/weight",
                "model.decoder.embed_tokens.weight",
            ),
            (
                "encoder/layer_norm/gamma",
                "model.encoder.layer_norm.weight",
            ),
            (
                "decoder/layer_3/attention/linear_1/bias",
                "model.decoder.layers.3.encoder_attn.kv.bias",
            ),
            (
                "encoder/layer_0/ffn/layer_norm/beta",
                "model.encoder.layers.0.final_layer_norm.bias",
            ),
            (
                "decoder/position_encodings/encodings",
                "model.decoder.embed_positions.weight",
            ),
        ];
        for (ct, hf) in cases {
            assert_eq!(hf_name(ct).as_deref(), Some(hf), "{ct}");
        }
        assert_eq!(hf_name("encoder/num_heads"), None);
    }

    /// A model.bin holding one variable, `encoder/num_heads`, of `shape` (f32) and `data`.
    fn model_bin(shape: &[u32], data: &[u8]) -> Vec<u8> {
        let string = |s: &str| {
            let mut b = ((s.len() + 1) as u16).to_le_bytes().to_vec();
            b.extend_from_slice(s.as_bytes());
            b.push(0);
            b
        };
        let mut b = 6u32.to_le_bytes().to_vec();
        b.extend(string("WhisperSpec"));
        b.extend(3u32.to_le_bytes());
        b.extend(1u32.to_le_bytes());
        b.extend(string("encoder/num_heads"));
        b.push(shape.len() as u8);
        shape.iter().for_each(|d| b.extend(d.to_le_bytes()));
        b.push(0); // f32
        b.extend((data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    fn load_err(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("model.bin");
        std::fs::write(&path, bytes).expect("write");
        match super::load(&path, &candle_core::Device::Cpu) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("loaded"),
        }
    }

    /// 2^21 x 2^21 x 2^22 elements wrap to 0, which matched an empty buffer and made a
    /// tensor claiming 2^64 elements (a crafted input to the `ct2` fuzz target).
    #[test]
    fn a_shape_whose_element_count_overflows_is_refused() {
        let e = load_err(&model_bin(&[1 << 21, 1 << 21, 1 << 22], &[]));
        assert!(e.contains("too many elements"), "{e}");
        // No elements, but strides from the last dimension overflow (candle panicked in a
        // build with overflow checks: the ct2 fuzz target's 26 findings).
        let e = load_err(&model_bin(&[0, u32::MAX, u32::MAX, u32::MAX], &[]));
        assert!(e.contains("too many elements"), "{e}");
        // 2^30 f32 elements are 2^32 bytes, which a u32 byte count cannot hold either.
        let e = load_err(&model_bin(&[1 << 30], &[0; 4]));
        assert!(e.contains("4 bytes for shape"), "{e}");
        // A well-formed scalar still reaches the next check (no decoder heads).
        let e = load_err(&model_bin(&[], &2f32.to_le_bytes()));
        assert!(e.contains("missing decoder/num_heads"), "{e}");
    }
}
