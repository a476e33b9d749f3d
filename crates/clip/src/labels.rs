//! Zero-shot tagging: a label vocabulary, prompt ensembling and an on-disk cache of
//! the label embeddings keyed by model and vocabulary.
//!
//! Each label's embedding is the normalised mean of its normalised prompt embeddings
//! (CLIP paper, section 3.1.4): one prompt per label is noisier than several.

use crate::cache::{read_matrix, write_matrix};
use crate::{Clip, ClipError};
use percept_core::Tag;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The default vocabulary (several hundred everyday labels), one per line.
pub const BUNDLED_LABELS: &str = include_str!("../../../assets/labels.txt");

/// Prompt templates; `{}` is replaced by the label.
pub const TEMPLATES: [&str; 8] = [
    "a photo of a {}.",
    "a blurry photo of a {}.",
    "a close-up photo of a {}.",
    "a bright photo of a {}.",
    "a photo of the large {}.",
    "a photo of the small {}.",
    "a cropped photo of the {}.",
    "art of the {}.",
];

/// Labels from vocabulary text: one per line, `#` comments and blanks skipped,
/// duplicates dropped (first one wins).
pub fn parse_vocabulary(text: &str) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter(|l| seen.insert(l.to_string()))
        .map(str::to_string)
        .collect()
}

/// Whether [`LabelSet::load_or_build`] found the embeddings on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Built,
}

#[derive(Debug, Clone)]
pub struct LabelSet {
    pub labels: Vec<String>,
    /// Row-major `labels.len() x dim`, unit rows.
    pub embeddings: Vec<f32>,
    pub dim: usize,
}

impl LabelSet {
    /// Embeds every label with every template and averages per label.
    pub fn build(clip: &Clip, labels: &[String], templates: &[&str]) -> Result<Self, ClipError> {
        let prompts: Vec<String> = labels
            .iter()
            .flat_map(|l| templates.iter().map(move |t| t.replace("{}", l)))
            .collect();
        let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
        let embs = clip.embed_texts(&refs, true)?;
        let dim = embs.first().map_or(0, Vec::len);
        let mut embeddings = Vec::with_capacity(labels.len() * dim);
        for group in embs.chunks(templates.len().max(1)) {
            let mut mean = vec![0f32; dim];
            for e in group {
                for (m, v) in mean.iter_mut().zip(e) {
                    *m += v;
                }
            }
            normalize(&mut mean);
            embeddings.extend(mean);
        }
        Ok(LabelSet {
            labels: labels.to_vec(),
            embeddings,
            dim,
        })
    }

    /// Cache file for this model + vocabulary + template set.
    pub fn cache_path(
        cache_dir: &Path,
        clip: &Clip,
        labels: &[String],
        templates: &[&str],
    ) -> PathBuf {
        let mut h = Sha256::new();
        h.update(clip.fingerprint.as_bytes());
        for l in labels {
            h.update(l.as_bytes());
            h.update([0]);
        }
        for t in templates {
            h.update(t.as_bytes());
            h.update([1]);
        }
        let key = hex::encode(h.finalize());
        cache_dir
            .join("clip")
            .join(format!("labels-{}.bin", &key[..32]))
    }

    /// Reads the cached embeddings, or builds and stores them. A damaged cache file is
    /// rebuilt rather than trusted.
    pub fn load_or_build(
        clip: &Clip,
        labels: &[String],
        templates: &[&str],
        cache_dir: &Path,
    ) -> Result<(Self, CacheStatus), ClipError> {
        let path = Self::cache_path(cache_dir, clip, labels, templates);
        if let Ok(Some((rows, dim, embeddings))) = read_matrix(&path) {
            if rows == labels.len() && dim == clip.model.config.projection_dim {
                let set = LabelSet {
                    labels: labels.to_vec(),
                    embeddings,
                    dim,
                };
                return Ok((set, CacheStatus::Hit));
            }
        }
        let set = Self::build(clip, labels, templates)?;
        write_matrix(&path, set.labels.len(), set.dim, &set.embeddings)?;
        Ok((set, CacheStatus::Built))
    }

    /// The `k` most probable labels for a unit image embedding: softmax over all labels
    /// of `logit_scale * cosine`, as CLIP's zero-shot classifier.
    pub fn top_k(&self, image: &[f32], logit_scale: f32, k: usize) -> Vec<Tag> {
        let logits: Vec<f32> = self
            .embeddings
            .chunks_exact(self.dim.max(1))
            .map(|row| logit_scale * row.iter().zip(image).map(|(a, b)| a * b).sum::<f32>())
            .collect();
        let probs = softmax(&logits);
        let mut order: Vec<usize> = (0..probs.len()).collect();
        order.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]).then(a.cmp(&b)));
        order
            .into_iter()
            .take(k)
            .map(|i| Tag {
                label: self.labels[i].clone(),
                score: probs[i],
            })
            .collect()
    }
}

pub(crate) fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = logits.iter().map(|&l| f64::from(l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|&e| (e / sum) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_vocabulary_is_large_and_clean() {
        let labels = parse_vocabulary(BUNDLED_LABELS);
        assert!(labels.len() >= 300, "{}", labels.len());
        assert!(labels.iter().any(|l| l == "cat"));
        assert!(labels.iter().all(|l| !l.contains('{') && l.len() < 40));
    }

    #[test]
    fn vocabulary_skips_comments_blanks_and_duplicates() {
        assert_eq!(
            parse_vocabulary("# animals\ncat\n\n dog \ncat\n"),
            vec!["cat", "dog"]
        );
    }

    #[test]
    fn top_k_is_sorted_and_probabilities_sum_to_one() {
        let set = LabelSet {
            labels: vec!["a".into(), "b".into(), "c".into()],
            embeddings: vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8],
            dim: 2,
        };
        let tags = set.top_k(&[0.0, 1.0], 100.0, 3);
        assert_eq!(
            tags.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(),
            ["b", "c", "a"]
        );
        let sum: f32 = tags.iter().map(|t| t.score).sum();
        assert!((sum - 1.0).abs() < 1e-5);
        assert_eq!(set.top_k(&[0.0, 1.0], 100.0, 1).len(), 1);
    }
}
