//! The recursive walk: every regular file once, whatever links lead to it, with its size,
//! mtime and sniffed kind. Symlinks are followed; a link back to an ancestor (a loop) is
//! reported and not entered.

use super::record::Kind;
use super::sniff::sniff_file;
use crate::error::{PipelineError, Result};
use globset::GlobSet;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

/// One file found by the walk.
#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    /// The path as recorded (the root as given, joined with the relative path).
    pub display: String,
    pub size: u64,
    pub mtime: f64,
    pub kind: Kind,
    /// Set when the file is recorded as an error without running any stage.
    pub error: Option<String>,
    pub sniff_secs: f64,
}

#[derive(Debug, Default)]
pub struct Walked {
    pub entries: Vec<Entry>,
    /// Things not recorded, worth one stderr line each (symlink loops, sockets...).
    pub notes: Vec<String>,
}

/// Walks `root` in file-name order. `skip` is a file (the results file itself) never listed.
pub fn walk(root: &Path, exclude: &GlobSet, skip: Option<&Path>) -> Result<Walked> {
    if !root.exists() {
        return Err(PipelineError::invalid(format!(
            "{}: no such file or directory",
            root.display()
        )));
    }
    // `./media` and `media` name the same files; record them the same way so resume matches.
    let clean: PathBuf = root
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let root = if clean.as_os_str().is_empty() {
        Path::new(".")
    } else {
        clean.as_path()
    };
    let skip = skip.and_then(|p| p.canonicalize().ok());
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut out = Walked::default();
    let it = walkdir::WalkDir::new(root)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            let rel = e.path().strip_prefix(root).unwrap_or(e.path());
            e.depth() == 0 || !exclude.is_match(rel)
        });
    for item in it {
        let entry = match item {
            Ok(e) => e,
            Err(e) => {
                match (e.loop_ancestor(), e.path()) {
                    (Some(anc), Some(p)) => out.notes.push(format!(
                        "{}: symlink loop back to {}; not followed",
                        p.display(),
                        anc.display()
                    )),
                    (None, Some(p)) if e.depth() == 0 => {
                        return Err(PipelineError::invalid(format!("{}: {e}", p.display())))
                    }
                    // A broken link or an unreadable entry is a file we could not process.
                    (None, Some(p)) => out.entries.push(failed(p, format!("cannot read: {e}"))),
                    (_, None) => out.notes.push(format!("walk error: {e}")),
                }
                continue;
            }
        };
        let ft = entry.file_type();
        if ft.is_dir() {
            continue; // a folder named x.wav is walked like any folder
        }
        if !ft.is_file() {
            out.notes.push(format!(
                "{}: not a regular file; skipped",
                entry.path().display()
            ));
            continue;
        }
        let canonical = entry
            .path()
            .canonicalize()
            .unwrap_or_else(|_| entry.path().to_path_buf());
        if skip.as_ref() == Some(&canonical) || !seen.insert(canonical) {
            continue; // the results file, or a file already reached through another link
        }
        out.entries.push(inspect(entry.path()));
    }
    Ok(out)
}

fn failed(path: &Path, error: String) -> Entry {
    Entry {
        path: path.to_path_buf(),
        display: path.display().to_string(),
        size: 0,
        mtime: 0.0,
        kind: Kind::Other,
        error: Some(error),
        sniff_secs: 0.0,
    }
}

/// One file as the walk records it: size, mtime and sniffed kind, or the error that makes it
/// an error record (a fleet worker inspects each file it takes again, as it finds it).
pub fn inspect(path: &Path) -> Entry {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return failed(path, format!("cannot read metadata: {e}")),
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let started = Instant::now();
    let sniffed = sniff_file(path);
    let mut entry = failed(path, String::new());
    entry.size = meta.len();
    entry.mtime = mtime;
    entry.sniff_secs = started.elapsed().as_secs_f64();
    match sniffed {
        Ok(s) if s.kind == Kind::Other => {
            entry.error = Some(format!(
                "not an image or audio file (detected: {})",
                s.detected
            ));
        }
        Ok(s) => {
            entry.kind = s.kind;
            entry.error = None;
        }
        Err(e) => entry.error = Some(format!("cannot read: {e}")),
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_named_like_files_once_per_file_without_looping() {
        let top = std::env::temp_dir().join(format!("percept-walk-{}", std::process::id()));
        let d = top.join("m");
        std::fs::create_dir_all(d.join("x.wav")).unwrap();
        std::fs::create_dir_all(d.join("skip")).unwrap();
        std::fs::write(d.join("x.wav/a.txt"), "text").unwrap();
        std::fs::write(d.join("b.wav"), b"RIFF\x24\0\0\0WAVEfmt ").unwrap();
        std::fs::write(d.join("skip/c.txt"), "text").unwrap();
        std::os::unix::fs::symlink("..", d.join("x.wav/up")).unwrap();
        std::os::unix::fs::symlink("b.wav", d.join("z.wav")).unwrap();
        let mut ex = globset::GlobSetBuilder::new();
        ex.add(globset::Glob::new("skip").unwrap());
        let w = walk(&top.join("./m/"), &ex.build().unwrap(), None).unwrap();
        let paths: Vec<&str> = w.entries.iter().map(|e| e.display.as_str()).collect();
        let m = top.join("m");
        let want = [m.join("b.wav"), m.join("x.wav/a.txt")];
        assert_eq!(
            paths,
            want.iter().map(|p| p.to_str().unwrap()).collect::<Vec<_>>()
        );
        assert_eq!(w.entries[0].kind, Kind::Audio);
        assert_eq!(w.entries[1].kind, Kind::Other);
        assert!(w.entries[1]
            .error
            .as_deref()
            .unwrap()
            .contains("detected: text"));
        assert!(
            w.notes.iter().any(|n| n.contains("symlink loop")),
            "{:?}",
            w.notes
        );
        std::fs::remove_dir_all(&top).unwrap();
    }
}
