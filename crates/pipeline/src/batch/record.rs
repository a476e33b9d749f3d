//! One JSON line per file: what `percept batch` writes and what a rerun reads back.

use percept_core::{ImageFacts, Tag, Transcript};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What a file is, judged by its content (magic bytes), never by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Audio,
    Image,
    /// A video (MP4, MOV, MKV, WebM, AVI with a picture track): its audio track is
    /// transcribed and its sampled frames described.
    Video,
    /// Neither: recorded with status `error` so the report accounts for every file.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Error,
}

/// The model outputs for one file; absent parts are left out of the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    /// Audio: full text and timed segments.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transcript: Option<Transcript>,
    /// Image: CLIP tags (empty when CLIP weights are absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Image: the ImageNet classifier's top classes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<Tag>>,
    /// Image: the text OCR read in it (absent when none, or OCR is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr: Option<String>,
    /// Image: facts read from the file itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<ImageFacts>,
    /// Video: its length in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_s: Option<f64>,
    /// Video: each sampled frame's labels and tags, with its time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frames: Option<Vec<crate::video::FrameSeen>>,
    /// The LLM's answer to `--question` about this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// Seconds spent per stage on this file (`sniff`, `decode`, `speech`, `vision`, `llm`).
pub type Timings = BTreeMap<&'static str, f64>;

/// The line written for one file.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    /// The path for people: exact when it is UTF-8, else with U+FFFD for the bad bytes.
    pub path: &'a str,
    /// The exact path bytes in base64, only when the name is not UTF-8 (two such names can
    /// read alike in `path`; this maps the record back to its one file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_b64: Option<String>,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: f64,
    pub kind: Kind,
    pub status: Status,
    pub error: Option<String>,
    pub results: &'a Results,
    pub timings: &'a Timings,
}

impl Record<'_> {
    /// The full line, newline included, so that it reaches the file in one write.
    pub fn to_line(&self) -> String {
        // Serialising plain owned data cannot fail; fall back to a minimal valid record anyway.
        let mut line = serde_json::to_string(self).unwrap_or_else(|e| {
            serde_json::json!({
                "path": self.path, "size": self.size, "mtime": self.mtime,
                "kind": self.kind, "status": "error", "error": format!("cannot serialise: {e}"),
            })
            .to_string()
        });
        line.push('\n');
        line
    }
}

/// The part of a stored record that decides whether a rerun skips the file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StoredKey {
    pub path: String,
    #[serde(default)]
    pub path_b64: Option<String>,
    pub size: u64,
    pub mtime: f64,
    pub status: Status,
}

impl StoredKey {
    /// What resume matches on: the exact bytes when the record has them.
    pub fn key(&self) -> String {
        match &self.path_b64 {
            Some(b) => format!("b64:{b}"),
            None => self.path.clone(),
        }
    }
}

/// The path's exact bytes in base64 when they are not UTF-8.
pub fn path_b64(path: &Path) -> Option<String> {
    use base64::Engine as _;
    if path.to_str().is_some() {
        return None;
    }
    #[cfg(unix)]
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()).to_vec();
    #[cfg(not(unix))]
    let bytes = path.to_string_lossy().into_owned().into_bytes();
    Some(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// The resume key of a file about to run: [`StoredKey::key`] of the record it would write.
pub fn path_key(path: &Path, display: &str) -> String {
    match path_b64(path) {
        Some(b) => format!("b64:{b}"),
        None => display.to_string(),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn names_that_read_alike_keep_distinct_keys() {
        let a = Path::new(std::ffi::OsStr::from_bytes(b"x\xff.wav"));
        let b = Path::new(std::ffi::OsStr::from_bytes(b"x\xfe.wav"));
        let (da, db) = (a.display().to_string(), b.display().to_string());
        assert_eq!(da, db, "both show as x\u{fffd}.wav");
        assert_ne!(path_key(a, &da), path_key(b, &db));
        assert_eq!(path_key(Path::new("ok.wav"), "ok.wav"), "ok.wav");
        assert!(path_b64(Path::new("ok.wav")).is_none());
    }
}
