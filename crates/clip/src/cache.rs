//! Where derived data lives and how float matrices are stored there.

use crate::ClipError;
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"PCPTMAT1";

/// `$PERCEPT_CACHE_DIR`, else `$XDG_CACHE_HOME/percept`, else `~/.cache/percept`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PERCEPT_CACHE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("percept");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("percept")
}

/// Writes through a temporary file and a rename, so an interrupted run never leaves a
/// half-written cache behind for the next run to trust.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ClipError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| ClipError::io(dir, e))?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let result = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(ClipError::io(path, e));
    }
    Ok(())
}

/// Row-major `rows x cols` f32 matrix: magic, two u32 sizes, little-endian floats.
pub fn write_matrix(path: &Path, rows: usize, cols: usize, data: &[f32]) -> Result<(), ClipError> {
    let mut bytes = Vec::with_capacity(16 + data.len() * 4);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(rows as u32).to_le_bytes());
    bytes.extend_from_slice(&(cols as u32).to_le_bytes());
    for v in data {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    write_atomic(path, &bytes)
}

/// `None` when the file does not exist; an error when it exists but is damaged.
pub fn read_matrix(path: &Path) -> Result<Option<(usize, usize, Vec<f32>)>, ClipError> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ClipError::io(path, e)),
    };
    let bad = |message: &str| ClipError::Cache {
        path: path.display().to_string(),
        message: message.to_string(),
    };
    if bytes.len() < 16 || &bytes[..8] != MAGIC {
        return Err(bad("not a percept matrix file"));
    }
    let rows = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
    let cols = u32::from_le_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize;
    let body = &bytes[16..];
    if body.len() != rows * cols * 4 {
        return Err(bad("truncated"));
    }
    let data = body
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok(Some((rows, cols, data)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_round_trips_and_damage_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/m.bin");
        assert!(read_matrix(&p).unwrap().is_none());
        write_matrix(&p, 2, 3, &[1.0, 2.0, 3.0, 4.0, 5.0, -6.5]).unwrap();
        let (r, c, d) = read_matrix(&p).unwrap().unwrap();
        assert_eq!((r, c, d[5]), (2, 3, -6.5));
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
        assert!(read_matrix(&p).is_err());
    }
}
