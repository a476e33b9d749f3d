//! The on-disk embedding index behind `percept search`: one JSON file per (folder,
//! model) in the cache dir; only new or changed files (size or mtime) are re-embedded.

use crate::cache::write_atomic;
use crate::{Clip, ClipError};
use percept_media::image::{decode_image_file, has_image_extension, ImageOptions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FORMAT_VERSION: u32 = 1;
const EMBED_BATCH: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    size: u64,
    mtime_ns: u64,
    embedding: Vec<f32>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SearchIndex {
    version: u32,
    model: String,
    /// Paths relative to the indexed folder.
    entries: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateReport {
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// One message per image that could not be decoded (it is retried next time).
    pub failed: Vec<String>,
}

impl SearchIndex {
    /// Index file for `root` (canonicalised) and this model.
    pub fn path_for(cache_dir: &Path, root: &Path, clip: &Clip) -> Result<PathBuf, ClipError> {
        let canon = root.canonicalize().map_err(|e| ClipError::io(root, e))?;
        let mut h = Sha256::new();
        h.update(canon.to_string_lossy().as_bytes());
        h.update([0]);
        h.update(clip.fingerprint.as_bytes());
        let key = hex::encode(h.finalize());
        Ok(cache_dir
            .join("clip")
            .join(format!("index-{}.json", &key[..32])))
    }

    /// A missing or unreadable index starts empty: it is a cache, rebuilt on demand.
    pub fn load(path: &Path, clip: &Clip) -> SearchIndex {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<SearchIndex>(&b).ok())
            .filter(|i| i.version == FORMAT_VERSION && i.model == clip.fingerprint)
            .unwrap_or_else(|| SearchIndex {
                version: FORMAT_VERSION,
                model: clip.fingerprint.clone(),
                entries: BTreeMap::new(),
            })
    }

    pub fn save(&self, path: &Path) -> Result<(), ClipError> {
        let bytes = serde_json::to_vec(self).map_err(|e| ClipError::Cache {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        write_atomic(path, &bytes)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Brings the index in line with the image files under `root`.
    pub fn update(
        &mut self,
        root: &Path,
        clip: &Clip,
        opts: &ImageOptions,
    ) -> Result<UpdateReport, ClipError> {
        let mut files = Vec::new();
        walk(root, root, &mut files).map_err(|e| ClipError::io(root, e))?;
        let mut report = UpdateReport::default();
        let present: std::collections::HashSet<&String> = files.iter().map(|f| &f.0).collect();
        let before = self.entries.len();
        self.entries.retain(|k, _| present.contains(k));
        report.removed = before - self.entries.len();

        let mut todo = Vec::new();
        for (rel, size, mtime_ns) in &files {
            match self.entries.get(rel) {
                Some(e) if e.size == *size && e.mtime_ns == *mtime_ns => report.unchanged += 1,
                Some(_) => todo.push((rel.clone(), *size, *mtime_ns, true)),
                None => todo.push((rel.clone(), *size, *mtime_ns, false)),
            }
        }
        for chunk in todo.chunks(EMBED_BATCH) {
            let mut decoded = Vec::new();
            for (rel, size, mtime_ns, changed) in chunk {
                match decode_image_file(&root.join(rel), opts) {
                    Ok(img) => decoded.push((rel, *size, *mtime_ns, *changed, img)),
                    Err(e) => report.failed.push(e.to_string()),
                }
            }
            let refs: Vec<_> = decoded.iter().map(|d| &d.4).collect();
            let embs = clip.embed_images(&refs)?;
            for ((rel, size, mtime_ns, changed, _), embedding) in decoded.into_iter().zip(embs) {
                if changed {
                    report.changed += 1;
                } else {
                    report.added += 1;
                }
                let entry = Entry {
                    size,
                    mtime_ns,
                    embedding,
                };
                self.entries.insert(rel.clone(), entry);
            }
        }
        Ok(report)
    }

    /// The `k` entries most similar (cosine) to a unit query embedding, best first.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(String, f32)> {
        let mut scored: Vec<(String, f32)> = self
            .entries
            .iter()
            .map(|(p, e)| {
                (
                    p.clone(),
                    e.embedding.iter().zip(query).map(|(a, b)| a * b).sum(),
                )
            })
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }
}

/// Image files under `dir` as (relative path, size, mtime ns), hidden entries skipped.
fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, u64, u64)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = e.path();
        let meta = e.metadata()?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if meta.is_file() && has_image_extension(&path) {
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as u64);
            out.push((rel, meta.len(), mtime_ns));
        }
    }
    Ok(())
}
