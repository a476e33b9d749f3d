//! Where models live on disk and how a name becomes a directory.
//!
//! Lookup order for a model id: each user directory (`--model-dir`, `PERCEPT_MODEL_DIR`,
//! holding `<id>/`), then the cache (`$PERCEPT_HOME/models`, else `$XDG_CACHE_HOME/percept/models`,
//! else `~/.cache/percept/models`). Only `percept models fetch` writes, and only by renaming a
//! fully verified directory into place.

use crate::hash::sha256_file;
use crate::manifest::{Manifest, ModelSpec, BUILTIN};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("model `{id}` is not present; run `percept models fetch {id}` (or pass a directory)")]
    Missing { id: String },
    #[error("unknown model `{id}`; known models: {known}")]
    Unknown { id: String, known: String },
    #[error("model manifest {path}: {source}")]
    Manifest {
        path: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot find a cache directory: set PERCEPT_HOME")]
    NoHome,
    #[error("{0}")]
    Fetch(#[from] crate::fetch::FetchError),
}

impl StoreError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.display().to_string(),
            source,
        }
    }
}

/// Where one model stands on this machine.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelStatus {
    pub id: String,
    pub kind: crate::Kind,
    pub default: bool,
    pub description: String,
    /// Directory holding all files, if every file is there with its expected size.
    pub path: Option<PathBuf>,
    pub size: Option<u64>,
}

/// Result of checking one file's hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileCheck {
    pub file: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub manifest: Manifest,
    /// Cache root; models are `<home>/models/<id>/`.
    pub home: PathBuf,
    /// User directories searched before the cache, each holding `<id>/` folders.
    pub model_dirs: Vec<PathBuf>,
    /// Extra arguments for `pip download` (e.g. `--no-index --find-links DIR` for offline wheels).
    pub pip_args: Vec<String>,
    pub python: String,
}

impl Store {
    /// The store as configured by the environment (`PERCEPT_HOME`, `PERCEPT_MODEL_DIR`,
    /// `PERCEPT_MANIFEST`, `PERCEPT_PIP_ARGS`, `PERCEPT_PYTHON`).
    pub fn from_env() -> Result<Self, StoreError> {
        let manifest = match std::env::var_os("PERCEPT_MANIFEST") {
            Some(p) => {
                let path = PathBuf::from(p);
                let text = std::fs::read_to_string(&path).map_err(|e| StoreError::io(&path, e))?;
                parse_manifest(&text, &path.display().to_string())?
            }
            None => parse_manifest(BUILTIN, "builtin assets/models.toml")?,
        };
        let home = match std::env::var_os("PERCEPT_HOME") {
            Some(h) => PathBuf::from(h),
            None => default_home().ok_or(StoreError::NoHome)?,
        };
        let model_dirs = std::env::var_os("PERCEPT_MODEL_DIR")
            .map(|v| std::env::split_paths(&v).collect())
            .unwrap_or_default();
        let pip_args = std::env::var("PERCEPT_PIP_ARGS")
            .map(|s| s.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let python = std::env::var("PERCEPT_PYTHON").unwrap_or_else(|_| "python3".to_string());
        Ok(Store {
            manifest,
            home,
            model_dirs,
            pip_args,
            python,
        })
    }

    pub fn models_root(&self) -> PathBuf {
        self.home.join("models")
    }

    pub fn spec(&self, id: &str) -> Result<&ModelSpec, StoreError> {
        self.manifest.get(id).ok_or_else(|| StoreError::Unknown {
            id: id.to_string(),
            known: self.manifest.ids().join(", "),
        })
    }

    /// The directory holding every file of `id`, searching user directories then the cache.
    pub fn find(&self, id: &str) -> Result<PathBuf, StoreError> {
        let spec = self.spec(id)?;
        self.candidates(id)
            .into_iter()
            .find(|dir| complete(spec, dir))
            .ok_or_else(|| StoreError::Missing { id: id.to_string() })
    }

    fn candidates(&self, id: &str) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.model_dirs.iter().map(|d| d.join(id)).collect();
        dirs.push(self.models_root().join(id));
        dirs
    }

    pub fn list(&self) -> Vec<ModelStatus> {
        self.manifest
            .models
            .iter()
            .map(|spec| ModelStatus {
                id: spec.id.clone(),
                kind: spec.kind,
                default: spec.default,
                description: spec.description.clone(),
                path: self.find(&spec.id).ok(),
                size: spec.total_size(),
            })
            .collect()
    }

    /// The ids `ids` names, or when it is empty the default set (every model with `all`).
    pub fn chosen_ids(&self, ids: Vec<String>, all: bool) -> Vec<String> {
        if !ids.is_empty() {
            return ids;
        }
        let chosen = self.manifest.models.iter().filter(|m| all || m.default);
        chosen.map(|m| m.id.clone()).collect()
    }

    /// The ids `ids` names, or when it is empty every model present on this machine.
    pub fn present_ids(&self, ids: Vec<String>) -> Vec<String> {
        if !ids.is_empty() {
            return ids;
        }
        let present = self.list().into_iter().filter(|m| m.path.is_some());
        present.map(|m| m.id).collect()
    }

    /// Re-hashes every file of a present model against the manifest.
    pub fn verify(&self, id: &str) -> Result<Vec<FileCheck>, StoreError> {
        let spec = self.spec(id)?;
        let dir = self.find(id)?;
        let mut out = Vec::new();
        for file in &spec.files {
            let path = dir.join(&file.name);
            let check = match &file.sha256 {
                None => FileCheck {
                    file: file.name.clone(),
                    ok: true,
                    detail: "no sha256 in the manifest; size only".to_string(),
                },
                Some(want) => {
                    let got = sha256_file(&path).map_err(|e| StoreError::io(&path, e))?;
                    FileCheck {
                        file: file.name.clone(),
                        ok: &got == want,
                        detail: if &got == want {
                            "sha256 ok".to_string()
                        } else {
                            format!("sha256 {got}, expected {want}")
                        },
                    }
                }
            };
            out.push(check);
        }
        Ok(out)
    }
}

fn parse_manifest(text: &str, origin: &str) -> Result<Manifest, StoreError> {
    Manifest::parse(text).map_err(|source| StoreError::Manifest {
        path: origin.to_string(),
        source,
    })
}

fn default_home() -> Option<PathBuf> {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(x).join("percept"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("percept"))
}

/// Every file is there with the size the manifest gives (hashes are `verify`'s job).
pub(crate) fn complete(spec: &ModelSpec, dir: &Path) -> bool {
    spec.files.iter().all(|f| {
        let Ok(meta) = std::fs::metadata(dir.join(&f.name)) else {
            return false;
        };
        meta.is_file() && f.size.is_none_or(|s| s == meta.len())
    })
}

/// Resolves a `--model` argument: an existing path (directory or file) is used as is;
/// otherwise it is a model id looked up in the store configured by the environment.
pub fn locate(spec: &str) -> Result<PathBuf, StoreError> {
    let p = PathBuf::from(spec);
    if p.exists() {
        return Ok(p);
    }
    Store::from_env()?.find(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two models, `a` a default with one 2-byte file and `b` not; only `a` is present.
    fn store(home: &Path) -> Store {
        let manifest = r#"
[[model]]
id = "a"
kind = "whisper"
format = "ctranslate2"
default = true
files = [{ name = "f", size = 2, parts = [{ wheel = "w==1", path = "f" }] }]

[[model]]
id = "b"
kind = "whisper"
format = "ctranslate2"
files = [{ name = "f", size = 2, parts = [{ wheel = "w==1", path = "f" }] }]
"#;
        let dir = home.join("models/a");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("f"), b"{}").expect("write");
        Store {
            manifest: Manifest::parse(manifest).expect("manifest"),
            home: home.to_path_buf(),
            model_dirs: Vec::new(),
            pip_args: Vec::new(),
            python: "python3".into(),
        }
    }

    #[test]
    fn named_ids_win_over_the_default_and_present_sets() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let s = store(tmp.path());
        let named = vec!["b".to_string()];
        assert_eq!(s.chosen_ids(named.clone(), false), named);
        assert_eq!(s.present_ids(named.clone()), named);
        assert_eq!(s.chosen_ids(Vec::new(), false), ["a"]);
        assert_eq!(s.chosen_ids(Vec::new(), true), ["a", "b"]);
        assert_eq!(s.present_ids(Vec::new()), ["a"]);
    }
}
