//! The model manifest (`assets/models.toml`): which models exist and where their files come from.

use serde::Deserialize;

/// The manifest compiled into the binary; `PERCEPT_MANIFEST` may name another file.
pub const BUILTIN: &str = include_str!("../../../assets/models.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    #[serde(rename = "model", default)]
    pub models: Vec<ModelSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Whisper,
    Clip,
    Llm,
    /// An image classifier with a fixed label set (ImageNet-1k).
    Classifier,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Ctranslate2,
    Safetensors,
    Gguf,
    /// torch.save's pre-1.6 format: pickles followed by raw storages, not a zip.
    #[serde(rename = "torch-legacy")]
    TorchLegacy,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub id: String,
    pub kind: Kind,
    pub format: Format,
    /// Part of the set `percept models fetch` gets when no id is named.
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub description: String,
    pub files: Vec<FileSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// File name inside the model's directory.
    pub name: String,
    pub size: Option<u64>,
    /// Lowercase hex; files without one (hub files) are trusted to the hub's own checks.
    pub sha256: Option<String>,
    pub parts: Vec<Part>,
}

/// One piece of a file; a file is its parts concatenated in order.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Part {
    Wheel {
        wheel: String,
        path: String,
    },
    /// A file of a Hugging Face repository, at a pinned commit when `revision` is given
    /// (a commit fixes every file's content; a branch follows whatever is pushed).
    Hub {
        hub: String,
        path: String,
        #[serde(default)]
        revision: Option<String>,
    },
}

impl Manifest {
    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn get(&self, id: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.id == id)
    }

    pub fn ids(&self) -> Vec<&str> {
        self.models.iter().map(|m| m.id.as_str()).collect()
    }
}

impl ModelSpec {
    /// Wheels this model needs, each once, in first-use order.
    pub fn wheels(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for part in self.files.iter().flat_map(|f| &f.parts) {
            if let Part::Wheel { wheel, .. } = part {
                if !out.contains(&wheel.as_str()) {
                    out.push(wheel);
                }
            }
        }
        out
    }

    pub fn total_size(&self) -> Option<u64> {
        self.files.iter().map(|f| f.size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_manifest_parses_and_names_the_defaults() {
        let m = Manifest::parse(BUILTIN).expect("builtin manifest");
        for id in [
            "whisper-tiny.en",
            "whisper-base",
            "smollm2-135m-instruct",
            "efficientnet-lite0",
        ] {
            let spec = m.get(id).unwrap_or_else(|| panic!("{id} missing"));
            assert!(spec.default, "{id} should be a default");
            assert!(spec.files.iter().all(|f| f.sha256.is_some()));
        }
        let base = m.get("whisper-base").expect("base");
        assert_eq!(base.wheels().len(), 2);
        let clip = m.get("clip-vit-base-patch32").expect("clip");
        for f in &clip.files {
            let Part::Hub { revision, .. } = &f.parts[0] else {
                panic!("{} is not a hub file", f.name);
            };
            let rev = revision.as_deref().unwrap_or_default();
            assert!(
                rev.len() == 40 && rev.bytes().all(|b| b.is_ascii_hexdigit()),
                "{}: pinned to a commit, not {rev:?}",
                f.name
            );
        }
        assert!(m.get("qwen2.5-coder-0.5b-instruct").is_some());
        let lite0 = m.get("efficientnet-lite0").expect("classifier");
        assert_eq!(
            (lite0.kind, lite0.format),
            (Kind::Classifier, Format::TorchLegacy)
        );
    }
}
