//! The results file as a crash-safe journal.
//!
//! Each record is one `write_all` of a whole line followed by `sync_data`, so after a crash
//! the file holds complete records plus at most one torn tail. Opening it again cuts that
//! tail (no trailing newline, or a last line that is not a record) and reads back which
//! files are done; the rerun appends only the rest, so no record is ever torn or duplicated.

use super::record::{Status, StoredKey};
use crate::error::{PipelineError, Result};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Two mtimes this close are the same: the JSON float round trip may move the last bit.
const MTIME_TOLERANCE_SECS: f64 = 1e-6;

/// What a scan of existing journal bytes found.
#[derive(Debug, Default, PartialEq)]
pub struct Scan {
    /// Bytes to keep: everything up to and including the last good record's newline.
    pub valid_len: u64,
    pub records: Vec<StoredKey>,
    /// Lines before the last good record that are not records (kept, but reported).
    pub bad_lines: usize,
    /// Bytes cut from the end (a torn or invalid last line).
    pub cut_bytes: u64,
}

/// Splits journal bytes into good records and a tail to cut. Pure, so it is tested directly.
pub fn scan(bytes: &[u8]) -> Scan {
    // Without a trailing newline the last line was never completely written.
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let mut lines: Vec<(usize, usize, Option<StoredKey>)> = Vec::new();
    let mut start = 0;
    for (i, &b) in bytes[..complete].iter().enumerate() {
        if b == b'\n' {
            let line = &bytes[start..i];
            let parsed = if line.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                serde_json::from_slice::<StoredKey>(line).ok()
            };
            lines.push((start, i + 1, parsed));
            start = i + 1;
        }
    }
    // A complete but invalid last line (e.g. zeros after a power cut) is torn as well.
    while matches!(lines.last(), Some((_, _, None))) {
        lines.pop();
    }
    let valid_len = lines.last().map_or(0, |(_, end, _)| *end);
    let mut records = Vec::new();
    let mut bad_lines = 0;
    for (s, e, parsed) in lines {
        match parsed {
            Some(k) => records.push(k),
            None if bytes[s..e].iter().all(u8::is_ascii_whitespace) => {}
            None => bad_lines += 1,
        }
    }
    Scan {
        valid_len: valid_len as u64,
        records,
        bad_lines,
        cut_bytes: (bytes.len() - valid_len) as u64,
    }
}

/// Files already recorded, by path, with the (size, mtime) each record saw.
#[derive(Debug, Default)]
pub struct Done {
    by_path: HashMap<String, Vec<(u64, f64)>>,
}

impl Done {
    /// Error records count as done unless `retry_errors`: the same bytes fail the same way.
    pub fn from_records(records: &[StoredKey], retry_errors: bool) -> Self {
        let mut by_path: HashMap<String, Vec<(u64, f64)>> = HashMap::new();
        for r in records {
            if retry_errors && r.status == Status::Error {
                continue;
            }
            by_path.entry(r.key()).or_default().push((r.size, r.mtime));
        }
        Done { by_path }
    }

    pub fn contains(&self, path: &str, size: u64, mtime: f64) -> bool {
        self.by_path.get(path).is_some_and(|v| {
            v.iter()
                .any(|&(s, m)| s == size && (m - mtime).abs() <= MTIME_TOLERANCE_SECS)
        })
    }
}

/// The open results file, locked against a second writer.
pub struct Journal {
    file: File,
    path: PathBuf,
}

/// What opening the journal recovered.
pub struct Opened {
    pub journal: Journal,
    pub scan: Scan,
}

impl Journal {
    pub fn open(path: &Path) -> Result<Opened> {
        let name = path.display();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| PipelineError::io("opening", path, e))?;
        file.try_lock().map_err(|e| {
            PipelineError::invalid(format!("{name}: locked by another writer ({e})"))
        })?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| PipelineError::io("reading", path, e))?;
        let scan = scan(&bytes);
        if scan.cut_bytes > 0 {
            // Appends go to the new end: O_APPEND positions every write at the current length.
            file.set_len(scan.valid_len)
                .and_then(|()| file.sync_all())
                .map_err(|e| PipelineError::io("cutting the torn end of", path, e))?;
        }
        Ok(Opened {
            journal: Journal {
                file,
                path: path.to_path_buf(),
            },
            scan,
        })
    }

    /// Appends one whole line (ending in '\n') and makes it durable before returning.
    pub fn append(&mut self, line: &str) -> Result<()> {
        debug_assert!(line.ends_with('\n'));
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| PipelineError::io("writing", &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(path: &str, size: u64, status: &str) -> String {
        format!(
            "{{\"path\":\"{path}\",\"size\":{size},\"mtime\":1700000000.123456789,\"kind\":\"audio\",\"status\":\"{status}\",\"error\":null,\"results\":{{}},\"timings\":{{}}}}\n"
        )
    }

    #[test]
    fn complete_records_are_kept() {
        let text = rec("a", 1, "ok") + &rec("b", 2, "error");
        let s = scan(text.as_bytes());
        assert_eq!(s.valid_len, text.len() as u64);
        assert_eq!(s.cut_bytes, 0);
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.records[1].status, Status::Error);
    }

    #[test]
    fn a_line_without_newline_is_cut() {
        let good = rec("a", 1, "ok");
        let torn = &rec("b", 2, "ok")[..30];
        let s = scan((good.clone() + torn).as_bytes());
        assert_eq!(s.valid_len, good.len() as u64);
        assert_eq!(s.cut_bytes, 30);
        assert_eq!(s.records.len(), 1);
    }

    #[test]
    fn a_complete_invalid_last_line_is_cut_but_middle_garbage_is_kept() {
        let text = rec("a", 1, "ok") + "garbage\n" + &rec("b", 2, "ok") + "\0\0\0{\n";
        let s = scan(text.as_bytes());
        assert_eq!(s.records.len(), 2);
        assert_eq!(s.bad_lines, 1);
        assert_eq!(s.cut_bytes, 5);
    }

    #[test]
    fn empty_and_all_torn_files_keep_nothing() {
        assert_eq!(scan(b"").valid_len, 0);
        let s = scan(b"{\"path\":\"a\"");
        assert_eq!((s.valid_len, s.cut_bytes, s.records.len()), (0, 11, 0));
    }

    #[test]
    fn done_matches_path_size_and_mtime_and_can_retry_errors() {
        let s = scan((rec("a", 1, "ok") + &rec("b", 2, "error")).as_bytes());
        let done = Done::from_records(&s.records, false);
        assert!(done.contains("a", 1, 1_700_000_000.123_456_7));
        assert!(
            !done.contains("a", 2, 1_700_000_000.123_456_7),
            "size changed"
        );
        assert!(!done.contains("a", 1, 1700000001.0), "mtime changed");
        assert!(done.contains("b", 2, 1_700_000_000.123_456_7));
        let retry = Done::from_records(&s.records, true);
        assert!(!retry.contains("b", 2, 1_700_000_000.123_456_7));
    }

    #[test]
    fn opening_cuts_the_torn_tail_and_appends_after_it() {
        let dir = std::env::temp_dir().join(format!("percept-journal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("out.jsonl");
        let good = rec("a", 1, "ok");
        std::fs::write(&path, good.clone() + "{\"path\":\"b\",\"si").unwrap();
        {
            let mut opened = Journal::open(&path).unwrap();
            assert_eq!(opened.scan.records.len(), 1);
            opened.journal.append(&rec("c", 3, "ok")).unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, good + &rec("c", 3, "ok"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
