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
        let content = Content::read(&mut file).map_err(|e| LlmError::Gguf {
            path: path.to_path_buf(),
            message: e.to_string(),
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
