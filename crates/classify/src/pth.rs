//! torch.save's legacy (pre-1.6, non-zip) checkpoint format, read without torch.
//!
//! Layout (torch/serialization.py, `_legacy_save`): five pickles back to back (the magic
//! number, the protocol version, sys info, the object with storages as persistent ids,
//! the sorted list of storage keys), then each storage in that key order as an 8-byte
//! little-endian element count followed by its raw little-endian elements.
//!
//! Every count and shape is checked against what the file actually holds before a
//! tensor is allocated, so a hostile file gets an error, never a panic or a huge buffer.

use crate::pickle::{self, Node, PickleError, Value};
use candle_core::{DType, Device, Tensor};
use std::collections::HashMap;

const MAGIC: i128 = 0x1950a86a20f9469cfc6c;
const PROTOCOL_VERSION: i128 = 1001;

#[derive(Debug, thiserror::Error)]
pub enum PthError {
    #[error(
        "a zip-format torch checkpoint (torch 1.6 and later); only the legacy format is read here"
    )]
    ZipFormat,
    #[error("not a legacy torch checkpoint: {0}")]
    BadMagic(String),
    #[error(transparent)]
    Pickle(#[from] PickleError),
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("truncated checkpoint: storage `{key}` needs {need} bytes at offset {offset}, the file has {len}")]
    Truncated {
        key: String,
        need: u64,
        offset: usize,
        len: usize,
    },
    #[error("creating tensor `{name}`: {source}")]
    Tensor {
        name: String,
        source: candle_core::Error,
    },
}

fn bad(msg: impl Into<String>) -> PthError {
    PthError::Malformed(msg.into())
}

/// One storage as the header declares it.
struct StorageDecl {
    dtype: DType,
    numel: u64,
}

/// One tensor as the header declares it: a view into a storage.
struct TensorDecl {
    name: String,
    key: String,
    offset: u64,
    shape: Vec<usize>,
    stride: Vec<u64>,
}

/// Parses a whole legacy checkpoint holding a flat state dict (name -> tensor), in the
/// dict's order. Entries that are not tensors (torch keeps none in a plain state dict)
/// are skipped; anything malformed is an error.
pub fn read_legacy_pth(bytes: &[u8]) -> Result<Vec<(String, Tensor)>, PthError> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(PthError::ZipFormat);
    }
    if !bytes.starts_with(&[0x80, 0x02, 0x8a, 0x0a]) {
        return Err(PthError::BadMagic(
            "does not start with torch's magic number".into(),
        ));
    }
    let (magic, pos) = pickle::load(bytes, 0)?;
    if magic.value != Value::Int(MAGIC) {
        return Err(PthError::BadMagic(format!(
            "magic number {:?}",
            magic.value
        )));
    }
    let (version, pos) = pickle::load(bytes, pos)?;
    if version.value != Value::Int(PROTOCOL_VERSION) {
        return Err(bad(format!(
            "protocol version {:?}, expected 1001",
            version.value
        )));
    }
    let (sys_info, pos) = pickle::load(bytes, pos)?;
    check_sys_info(&sys_info)?;
    let (obj, pos) = pickle::load(bytes, pos)?;
    let (keys, mut pos) = pickle::load(bytes, pos)?;

    let mut storages: HashMap<String, StorageDecl> = HashMap::new();
    let decls = state_dict(obj, &mut storages)?;
    let Value::List(keys) = keys.value else {
        return Err(bad("the storage key list is not a list"));
    };

    let mut data: HashMap<String, (DType, &[u8])> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key.value else {
            return Err(bad("a storage key is not a string"));
        };
        let decl = storages
            .get(&key)
            .ok_or_else(|| bad(format!("storage `{key}` is listed but no tensor uses it")))?;
        let count = read_u64(bytes, pos, &key)?;
        pos += 8;
        if count != decl.numel {
            return Err(bad(format!(
                "storage `{key}` holds {count} elements, the header says {}",
                decl.numel
            )));
        }
        let need = count
            .checked_mul(decl.dtype.size_in_bytes() as u64)
            .filter(|&n| n <= (bytes.len() - pos) as u64)
            .ok_or(PthError::Truncated {
                key: key.clone(),
                need: count.saturating_mul(decl.dtype.size_in_bytes() as u64),
                offset: pos,
                len: bytes.len(),
            })? as usize;
        data.insert(key, (decl.dtype, &bytes[pos..pos + need]));
        pos += need;
    }

    let mut out = Vec::with_capacity(decls.len());
    for t in decls {
        let (dtype, raw) = *data
            .get(&t.key)
            .ok_or_else(|| bad(format!("storage `{}` of `{}` has no data", t.key, t.name)))?;
        let tensor = view(&t, dtype, raw)?;
        out.push((t.name, tensor));
    }
    Ok(out)
}

fn read_u64(bytes: &[u8], pos: usize, key: &str) -> Result<u64, PthError> {
    let b = bytes
        .get(pos..pos.saturating_add(8))
        .ok_or(PthError::Truncated {
            key: key.to_string(),
            need: 8,
            offset: pos,
            len: bytes.len(),
        })?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

fn check_sys_info(node: &Node) -> Result<(), PthError> {
    let Value::Dict(items) = &node.value else {
        return Err(bad("sys info is not a dict"));
    };
    let little = items.iter().any(|(k, v)| {
        k.value == Value::Str("little_endian".into()) && v.value == Value::Bool(true)
    });
    if !little {
        return Err(bad("written on a big-endian machine (not supported)"));
    }
    Ok(())
}

/// The tensors of a state dict, registering each storage they use.
fn state_dict(
    obj: Node,
    storages: &mut HashMap<String, StorageDecl>,
) -> Result<Vec<TensorDecl>, PthError> {
    // An OrderedDict with `_metadata` arrives as BUILD(dict, state); the items are the dict.
    let dict = match obj.value {
        Value::Build { obj, .. } => obj.value,
        v => v,
    };
    let Value::Dict(items) = dict else {
        return Err(bad("the checkpoint is not a state dict"));
    };
    let mut out = Vec::with_capacity(items.len());
    for (k, v) in items {
        let Value::Str(name) = k.value else {
            return Err(bad("a state dict key is not a string"));
        };
        if let Some(t) = tensor_decl(name, v, storages)? {
            out.push(t);
        }
    }
    Ok(out)
}

fn tensor_decl(
    name: String,
    node: Node,
    storages: &mut HashMap<String, StorageDecl>,
) -> Result<Option<TensorDecl>, PthError> {
    let Value::Reduce { callable, args } = node.value else {
        return Ok(None);
    };
    let Value::Global { module, name: func } = callable.value else {
        return Ok(None);
    };
    let args = match (module.as_str(), func.as_str(), args.value) {
        ("torch._utils", "_rebuild_tensor_v2", Value::Tuple(a)) => a,
        ("torch._utils", "_rebuild_parameter", Value::Tuple(a)) => {
            // (data, requires_grad, backward_hooks): data is the tensor itself.
            let data = a
                .into_iter()
                .next()
                .ok_or_else(|| bad(format!("`{name}`: empty parameter")))?;
            return tensor_decl(name, data, storages);
        }
        _ => return Ok(None),
    };
    let what = |m: &str| bad(format!("`{name}`: {m}"));
    if args.len() < 4 {
        return Err(what("_rebuild_tensor_v2 with too few arguments"));
    }
    let mut args = args.into_iter();
    let (Some(storage), Some(offset), Some(size), Some(stride)) =
        (args.next(), args.next(), args.next(), args.next())
    else {
        return Err(what("_rebuild_tensor_v2 with too few arguments"));
    };
    let Value::PersId(pid) = storage.value else {
        return Err(what("storage is not a persistent id"));
    };
    let Value::Tuple(pid) = pid.value else {
        return Err(what("persistent id is not a tuple"));
    };
    // ('storage', storage_type, key, location, numel[, view_metadata])
    let mut pid = pid.into_iter().map(|n| n.value);
    let (Some(Value::Str(tag)), Some(Value::Global { name: ty, .. }), Some(Value::Str(key))) =
        (pid.next(), pid.next(), pid.next())
    else {
        return Err(what("persistent id is not ('storage', type, key, ...)"));
    };
    let numel = match (pid.next(), pid.next()) {
        (Some(_location), Some(Value::Int(n))) => {
            non_negative(n).ok_or_else(|| what("bad storage size"))?
        }
        _ => return Err(what("persistent id has no storage size")),
    };
    if tag != "storage" {
        return Err(what("persistent id is not a storage"));
    }
    let dtype = match ty.as_str() {
        "FloatStorage" => DType::F32,
        "DoubleStorage" => DType::F64,
        "HalfStorage" => DType::F16,
        "BFloat16Storage" => DType::BF16,
        "LongStorage" => DType::I64,
        "ByteStorage" => DType::U8,
        other => return Err(what(&format!("unsupported storage type {other}"))),
    };
    match storages.get(&key) {
        Some(s) if s.numel != numel || s.dtype != dtype => {
            return Err(what(&format!(
                "storage `{key}` declared twice with different sizes"
            )))
        }
        Some(_) => {}
        None => {
            storages.insert(key.clone(), StorageDecl { dtype, numel });
        }
    }
    let offset = match offset.value {
        Value::Int(n) => non_negative(n).ok_or_else(|| what("negative storage offset"))?,
        _ => return Err(what("storage offset is not an integer")),
    };
    let ints = |v: Value, m: &str| -> Result<Vec<u64>, PthError> {
        let Value::Tuple(items) = v else {
            return Err(what(m));
        };
        items
            .into_iter()
            .map(|n| match n.value {
                Value::Int(i) => non_negative(i).ok_or_else(|| what(m)),
                _ => Err(what(m)),
            })
            .collect()
    };
    let shape = ints(size.value, "bad size")?;
    let stride = ints(stride.value, "bad stride")?;
    if shape.len() != stride.len() {
        return Err(what("size and stride differ in length"));
    }
    let shape = shape
        .into_iter()
        .map(|d| usize::try_from(d).map_err(|_| what("dimension too large")))
        .collect::<Result<_, _>>()?;
    Ok(Some(TensorDecl {
        name,
        key,
        offset,
        shape,
        stride,
    }))
}

fn non_negative(n: i128) -> Option<u64> {
    u64::try_from(n).ok()
}

/// The tensor `t` describes, copied out of its storage's bytes. Strides may be anything
/// (checkpoints converted from TensorFlow keep their transposed layouts); every element
/// read is proven to lie inside the storage before any is copied.
fn view(t: &TensorDecl, dtype: DType, raw: &[u8]) -> Result<Tensor, PthError> {
    let what = |m: String| bad(format!("`{}`: {m}", t.name));
    let numel = t
        .shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or_else(|| what("shape overflows".into()))?;
    let elem = dtype.size_in_bytes();
    let storage_numel = (raw.len() / elem) as u64;
    // The furthest element the view reads (none when it is empty).
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| {
            (d as u64)
                .saturating_sub(1)
                .checked_mul(s)
                .and_then(|x| acc.checked_add(x))
        });
    if numel > 0 && last.is_none_or(|l| l >= storage_numel) {
        return Err(what(format!(
            "view (size {:?}, stride {:?}, offset {}) overruns its storage of {storage_numel}",
            t.shape, t.stride, t.offset
        )));
    }
    let mut contiguous = true;
    let mut want = 1u64;
    for (&d, &s) in t.shape.iter().zip(&t.stride).rev() {
        contiguous &= d == 1 || s == want;
        want = want.saturating_mul(d as u64);
    }
    let start = t.offset as usize * elem;
    let bytes: std::borrow::Cow<[u8]> = if contiguous || numel == 0 {
        let end = start + numel as usize * elem;
        std::borrow::Cow::Borrowed(raw.get(start..end).unwrap_or_default())
    } else {
        std::borrow::Cow::Owned(gather(raw, elem, t, numel as usize))
    };
    Tensor::from_raw_buffer(&bytes, dtype, &t.shape, &Device::Cpu).map_err(|source| {
        PthError::Tensor {
            name: t.name.clone(),
            source,
        }
    })
}

/// Row-major copy of a strided view whose bounds `view` has checked.
fn gather(raw: &[u8], elem: usize, t: &TensorDecl, numel: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(numel * elem);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = index
            .iter()
            .zip(&t.stride)
            .fold(t.offset as usize, |acc, (&i, &s)| acc + i * s as usize);
        out.extend_from_slice(&raw[at * elem..(at + 1) * elem]);
        // Odometer increment, last dimension fastest.
        for (i, &d) in index.iter_mut().zip(&t.shape).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    out
}

#[cfg(test)]
#[path = "pth_tests.rs"]
mod tests;
