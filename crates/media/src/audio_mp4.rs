//! The sizes an MP4 (M4A, MOV) file declares, checked against the file before symphonia
//! reads it.
//!
//! symphonia 0.5's MP4 reader sizes its sample tables from the entry counts a file declares,
//! before it reads one entry (`Vec::with_capacity(count)` in `stts`, `stsc`, `stsz`, `stco`
//! and `co64`), and reads some atoms whole at their declared size (`hdlr`, metadata items).
//! A 1.7 KB file declaring 2^32 `stsc` entries asks for 66 GB, and a failed allocation
//! aborts the process, which no panic guard catches (found by `fuzz/`, target `audio`).
//! So before symphonia opens an MP4, every atom inside the containers it walks must end
//! inside the file, and every sample table's entries must fit inside its atom. A real file
//! always passes: these are the sizes it is made of.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// What is wrong with an MP4's declared sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mp4Problem {
    /// An atom ends past the end of the file: the file was cut.
    Truncated,
    /// A table declares more entries than its atom holds.
    Table(String),
}

/// symphonia looks this far into a file for a container's marker.
const PROBE_SEARCH_LIMIT: u64 = 1 << 20;

/// Atoms whose children symphonia's MP4 reader walks.
const CONTAINERS: &[&[u8; 4]] = &[
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf", b"mvex", b"moof", b"traf",
    b"udta", b"meta", b"ilst",
];

/// Nesting deeper than any real file; a deeper chain is left to symphonia.
const MAX_DEPTH: u32 = 16;

/// Checks the MP4 in `file` (of `len` bytes) if there is one: symphonia takes the first
/// `ftyp` within its probe window as the start of an MP4, and so does this check.
pub(crate) fn check(file: &mut File, len: u64) -> Result<(), Mp4Problem> {
    let result = check_from_start(file, len);
    // symphonia reads the file from the start, whatever happened here.
    let _ = file.seek(SeekFrom::Start(0));
    result
}

fn check_from_start(file: &mut File, len: u64) -> Result<(), Mp4Problem> {
    let window = len.min(PROBE_SEARCH_LIMIT + 8);
    let mut head = Vec::with_capacity(window as usize);
    let read = file
        .seek(SeekFrom::Start(0))
        .and_then(|_| (&mut *file).take(window).read_to_end(&mut head));
    let Some(at) = read
        .ok()
        .and_then(|_| head.windows(4).position(|w| w == b"ftyp"))
        .filter(|&at| at >= 4)
    else {
        return Ok(());
    };
    drop(head);
    Atoms { file, len }.walk(at as u64 - 4, len, 0, false)
}

struct Atoms<'a> {
    file: &'a mut File,
    len: u64,
}

impl Atoms<'_> {
    fn read<const N: usize>(&mut self, at: u64) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        self.file.seek(SeekFrom::Start(at)).ok()?;
        self.file.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    fn u32_at(&mut self, at: u64) -> Option<u64> {
        self.read::<4>(at).map(|b| u64::from(u32::from_be_bytes(b)))
    }

    /// Walks the atoms in `from..end`. Top-level atoms (`depth` 0) may run past the end of
    /// the file (a cut `mdat`: symphonia's call); inside a container none may.
    fn walk(&mut self, from: u64, end: u64, depth: u32, in_ilst: bool) -> Result<(), Mp4Problem> {
        let mut pos = from;
        while pos.saturating_add(8) <= end {
            let Some(head) = self.read::<8>(pos) else {
                return Ok(());
            };
            let size32 = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
            let kind: [u8; 4] = [head[4], head[5], head[6], head[7]];
            let (header, size) = match size32 {
                0 => (8, end - pos),
                1 => match self.read::<8>(pos + 8) {
                    Some(b) => (16, u64::from_be_bytes(b)),
                    None => return Ok(()),
                },
                n => (8, u64::from(n)),
            };
            if size < header {
                return Ok(()); // symphonia refuses this itself
            }
            let atom_end = pos.saturating_add(size);
            if atom_end > self.len && depth > 0 {
                return Err(Mp4Problem::Truncated);
            }
            // What the atom can really hold: it ends at the end of its parent or the file.
            let body = (pos + header)..atom_end.min(end).min(self.len);
            if (CONTAINERS.contains(&&kind) || in_ilst) && depth < MAX_DEPTH {
                // An ISO `meta` starts with a version and flags (zero); QuickTime's does not.
                let skip = if &kind == b"meta" && self.u32_at(body.start) == Some(0) {
                    4
                } else {
                    0
                };
                self.walk(body.start + skip, body.end, depth + 1, &kind == b"ilst")?;
            } else {
                self.check_table(&kind, body)?;
            }
            if size32 == 0 || atom_end >= end {
                return Ok(());
            }
            pos = atom_end;
        }
        Ok(())
    }

    /// A sample table's entry count against the bytes its atom holds.
    fn check_table(
        &mut self,
        kind: &[u8; 4],
        body: std::ops::Range<u64>,
    ) -> Result<(), Mp4Problem> {
        // Bytes before the count (after version and flags), and bytes per entry.
        let (before_count, entry) = match kind {
            b"stts" => (0, 8),
            b"stsc" => (0, 12),
            b"stco" => (0, 4),
            b"co64" => (0, 8),
            // A sample size, then the count; entries follow only when the size is 0.
            b"stsz" => match self.u32_at(body.start + 4) {
                Some(0) => (4, 4),
                _ => return Ok(()),
            },
            _ => return Ok(()),
        };
        let count_at = body.start + 4 + before_count;
        let Some(count) = self.u32_at(count_at) else {
            return Ok(()); // symphonia finds the atom cut short
        };
        let room = body.end.saturating_sub(count_at + 4);
        if count * entry > room {
            return Err(Mp4Problem::Table(format!(
                "its `{}` table declares {count} entries of {entry} bytes in {room} bytes",
                String::from_utf8_lossy(kind)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn atom(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut a = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        a.extend_from_slice(kind);
        a.extend_from_slice(body);
        a
    }

    fn table(count: u32, entries: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 0, 0, 0];
        b.extend_from_slice(&count.to_be_bytes());
        b.extend_from_slice(entries);
        b
    }

    fn mp4(stbl_children: &[u8]) -> Vec<u8> {
        let stbl = atom(b"stbl", stbl_children);
        let trak = atom(b"trak", &atom(b"mdia", &atom(b"minf", &stbl)));
        let mut f = atom(b"ftyp", b"M4A \0\0\0\0");
        f.extend(atom(b"moov", &trak));
        f.extend(atom(b"mdat", &[0; 16]));
        f
    }

    fn run(bytes: &[u8]) -> Result<(), Mp4Problem> {
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(bytes).expect("write");
        check(&mut f, bytes.len() as u64)
    }

    #[test]
    fn tables_that_fit_pass() {
        let stts = atom(b"stts", &table(2, &[1; 16]));
        let stsz = atom(b"stsz", &[&[0u8; 8][..], &table(0, &[])[4..]].concat());
        assert_eq!(run(&mp4(&[stts, stsz].concat())), Ok(()));
    }

    #[test]
    fn a_table_declaring_more_entries_than_it_holds_is_refused() {
        for kind in [b"stts", b"stsc", b"stco", b"co64"] {
            let bad = atom(kind, &table(u32::MAX, &[0; 24]));
            match run(&mp4(&bad)) {
                Err(Mp4Problem::Table(m)) => assert!(m.contains("4294967295 entries"), "{m}"),
                other => panic!("{}: {other:?}", String::from_utf8_lossy(kind)),
            }
        }
        // stsz: entries only when the sample size is 0.
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            run(&mp4(&atom(b"stsz", &body))),
            Err(Mp4Problem::Table(_))
        ));
        body[7] = 1;
        assert_eq!(run(&mp4(&atom(b"stsz", &body))), Ok(()));
    }

    #[test]
    fn an_atom_inside_a_container_that_ends_past_the_file_is_a_cut_file() {
        // `hdlr` is read whole at its declared size.
        let mut hdlr = atom(b"hdlr", &[0; 24]);
        hdlr[..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(run(&mp4(&hdlr)), Err(Mp4Problem::Truncated));
        // A 64-bit size.
        let mut big = 1u32.to_be_bytes().to_vec();
        big.extend_from_slice(b"hdlr");
        big.extend_from_slice(&(1u64 << 40).to_be_bytes());
        assert_eq!(run(&mp4(&big)), Err(Mp4Problem::Truncated));
        // A cut `mdat` at the top level is left to symphonia.
        let mut f = mp4(&[]);
        let n = f.len();
        f[n - 24..n - 20].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(run(&f), Ok(()));
    }

    #[test]
    fn other_files_and_junk_before_the_mp4_are_handled() {
        assert_eq!(run(b"RIFF\0\0\0\0WAVEfmt "), Ok(()));
        let mut junk = b"ID3 junk".to_vec();
        junk.extend(mp4(&atom(b"stsc", &table(1 << 30, &[]))));
        assert!(matches!(run(&junk), Err(Mp4Problem::Table(_))));
    }
}
