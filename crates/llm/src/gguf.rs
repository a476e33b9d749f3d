//! Opening a GGUF file and reading typed metadata fields with errors that name the field.

use crate::error::{LlmError, Result};
use candle_core::quantized::gguf_file::{Content, Value};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Resolves `--model ID|FILE|DIR` to one `.gguf` file: a file is used as is; a directory
/// (given, or found in the model store by id) must hold exactly one `.gguf` file.
pub fn resolve_model(spec: &str) -> Result<PathBuf> {
    let path = percept_models::locate(spec).map_err(|e| LlmError::Store(e.to_string()))?;
    if path.is_file() {
        return Ok(path);
    }
    let entries = std::fs::read_dir(&path).map_err(|source| LlmError::Io {
        path: path.clone(),
        source,
    })?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("gguf"))
        })
        .collect();
    match found.len() {
        0 => Err(LlmError::NoGguf(path)),
        1 => Ok(found.remove(0)),
        _ => Err(LlmError::ManyGguf(path)),
    }
}

/// A GGUF file's header (metadata and tensor directory) plus the open file for tensor reads.
pub struct GgufFile {
    pub path: PathBuf,
    pub content: Content,
    pub file: File,
}

impl GgufFile {
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = File::open(path).map_err(|source| LlmError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // candle asserts on some impossible headers (a `general.alignment` of 0 divides by
        // zero); a panic there is a malformed file, not a reason to stop the process.
        let read =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Content::read(&mut file)));
        let content = read
            .map_err(|_| "malformed header (the GGUF reader panicked)".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|message| LlmError::Gguf {
                path: path.to_path_buf(),
                message,
            })?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        check_tensors(&content, len).map_err(|message| LlmError::Gguf {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            content,
            file,
        })
    }

    pub fn meta(&self) -> Meta<'_> {
        Meta(&self.content)
    }
}

/// Every tensor in the directory must have elements, and its bytes must lie inside the
/// file. candle multiplies a tensor's dimensions without an overflow check (a product that
/// wraps passes its size check and leaves a tensor whose shape claims more than its data),
/// and reads a tensor of no elements through a misaligned pointer (found by the `gguf`
/// fuzz target, `scripts/fuzz`). Checked once here, before any tensor is read.
fn check_tensors(content: &Content, file_len: u64) -> std::result::Result<(), String> {
    for (name, info) in &content.tensor_infos {
        let dims = info.shape.dims();
        let dtype = info.ggml_dtype;
        let elems = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let bytes = elems
            .filter(|&n| n > 0 && n % dtype.block_size() == 0)
            .and_then(|n| (n / dtype.block_size()).checked_mul(dtype.type_size()));
        let end = bytes.and_then(|b| {
            content
                .tensor_data_offset
                .checked_add(info.offset)?
                .checked_add(b as u64)
        });
        if end.is_none_or(|end| end > file_len) {
            return Err(format!(
                "tensor `{name}` ({dtype:?} {dims:?} at offset {}) does not fit in the file's {file_len} bytes",
                info.offset
            ));
        }
    }
    Ok(())
}

/// Typed access to GGUF metadata.
#[derive(Clone, Copy)]
pub struct Meta<'a>(pub &'a Content);

fn bad(field: &str, message: impl Into<String>) -> LlmError {
    LlmError::Metadata {
        field: field.to_string(),
        message: message.into(),
    }
}

impl<'a> Meta<'a> {
    pub fn get(&self, field: &str) -> Option<&'a Value> {
        self.0.metadata.get(field)
    }

    pub fn string(&self, field: &str) -> Result<&'a str> {
        let v = self.get(field).ok_or_else(|| bad(field, "missing"))?;
        v.to_string()
            .map(|s| s.as_str())
            .map_err(|e| bad(field, e.to_string()))
    }

    pub fn opt_string(&self, field: &str) -> Option<&'a str> {
        self.get(field)
            .and_then(|v| v.to_string().ok())
            .map(|s| s.as_str())
    }

    pub fn opt_u32(&self, field: &str) -> Option<u32> {
        let v = self.get(field)?;
        v.to_u32()
            .ok()
            .or_else(|| v.to_i32().ok().and_then(|x| u32::try_from(x).ok()))
            .or_else(|| v.to_u64().ok().and_then(|x| u32::try_from(x).ok()))
    }

    pub fn opt_bool(&self, field: &str) -> Option<bool> {
        self.get(field).and_then(|v| v.to_bool().ok())
    }

    pub fn array(&self, field: &str) -> Result<&'a Vec<Value>> {
        let v = self.get(field).ok_or_else(|| bad(field, "missing"))?;
        v.to_vec().map_err(|e| bad(field, e.to_string()))
    }

    pub fn strings(&self, field: &str) -> Result<Vec<&'a str>> {
        self.array(field)?
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_string()
                    .map(|s| s.as_str())
                    .map_err(|e| bad(field, format!("item {i}: {e}")))
            })
            .collect()
    }

    pub fn opt_i32s(&self, field: &str) -> Result<Option<Vec<i32>>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let arr = v.to_vec().map_err(|e| bad(field, e.to_string()))?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| {
                v.to_i32()
                    .or_else(|_| v.to_u32().map(|x| x as i32))
                    .map_err(|e| bad(field, format!("item {i}: {e}")))
            })
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    pub fn opt_f32s(&self, field: &str) -> Result<Option<Vec<f32>>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let arr = v.to_vec().map_err(|e| bad(field, e.to_string()))?;
        arr.iter()
            .enumerate()
            .map(|(i, v)| v.to_f32().map_err(|e| bad(field, format!("item {i}: {e}"))))
            .collect::<Result<Vec<_>>>()
            .map(Some)
    }

    pub fn architecture(&self) -> Result<&'a str> {
        self.string("general.architecture")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A GGUF v3 holding `meta` (key, u32 value) and one f32 tensor `w` of `dims` (ggml
    /// order) at offset 0, then `data` bytes of tensor data.
    fn gguf(meta: &[(&str, u32)], dims: &[u64], data: usize) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(1u64.to_le_bytes());
        b.extend((meta.len() as u64).to_le_bytes());
        for (k, v) in meta {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
            b.extend(4u32.to_le_bytes()); // u32
            b.extend(v.to_le_bytes());
        }
        b.extend(1u64.to_le_bytes());
        b.extend(b"w");
        b.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            b.extend(d.to_le_bytes());
        }
        b.extend(0u32.to_le_bytes()); // f32
        b.extend(0u64.to_le_bytes()); // offset
        b.resize(b.len().next_multiple_of(32), 0);
        b.resize(b.len() + data, 0);
        b
    }

    fn open(bytes: &[u8]) -> Result<GgufFile> {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(bytes).expect("write");
        GgufFile::open(f.path())
    }

    fn refused(bytes: &[u8], want: &str) {
        match open(bytes) {
            Err(LlmError::Gguf { message, .. }) => assert!(message.contains(want), "{message}"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened"),
        }
    }

    #[test]
    fn a_tensor_that_fits_opens() {
        let gg = open(&gguf(&[], &[3, 2], 24)).expect("opens");
        let t = gg.content.tensor_infos.get("w").expect("w");
        assert_eq!(t.shape.dims(), [2, 3]);
    }

    /// Found by the `gguf` fuzz target: dimensions whose product wraps (2^33 x 2^33 is 0 in
    /// candle's unchecked product, so its size check passed), a tensor of no elements (read
    /// through a misaligned pointer), data past the end of the file, and an alignment of 0
    /// (a division by zero inside candle's header reader).
    #[test]
    fn tensors_that_cannot_be_in_the_file_are_refused_before_reading() {
        refused(&gguf(&[], &[1 << 33, 1 << 33], 64), "tensor `w`");
        refused(&gguf(&[], &[u64::MAX, 2], 64), "tensor `w`");
        refused(&gguf(&[], &[4, 0], 0), "tensor `w`");
        refused(&gguf(&[], &[3, 2], 20), "tensor `w`");
        refused(
            &gguf(&[("general.alignment", 0)], &[3, 2], 24),
            "malformed header",
        );
    }
}
