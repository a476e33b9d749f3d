//! One JSON line per file: what `percept batch` writes and what a rerun reads back.

use percept_core::{ImageFacts, Tag, Transcript};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a file is, judged by its content (magic bytes), never by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Audio,
    Image,
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
    /// Image: facts read from the file itself.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub facts: Option<ImageFacts>,
    /// The LLM's answer to `--question` about this file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// Seconds spent per stage on this file (`sniff`, `decode`, `speech`, `vision`, `llm`).
pub type Timings = BTreeMap<&'static str, f64>;

/// The line written for one file.
#[derive(Debug, Serialize)]
pub struct Record<'a> {
    pub path: &'a str,
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
    pub size: u64,
    pub mtime: f64,
    pub status: Status,
}
