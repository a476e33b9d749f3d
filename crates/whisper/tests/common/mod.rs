#![allow(dead_code)]

use percept_whisper::{Device, Precision, Whisper};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country.";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn load(id: &str) -> Whisper {
    load_with(id, Precision::default())
}

pub fn load_with(id: &str, precision: Precision) -> Whisper {
    let dir = percept_models::locate(id).unwrap_or_else(|e| {
        panic!("model {id} is required for this test but was not found ({e}); run `percept models fetch {id}`")
    });
    Whisper::load_with(&dir, &Device::Cpu, precision)
        .unwrap_or_else(|e| panic!("loading {id}: {e}"))
}

pub fn tiny() -> &'static Whisper {
    static M: OnceLock<Whisper> = OnceLock::new();
    M.get_or_init(|| load("whisper-tiny.en"))
}

pub fn base() -> &'static Whisper {
    static M: OnceLock<Whisper> = OnceLock::new();
    M.get_or_init(|| load("whisper-base"))
}

/// Lower case, punctuation dropped, whitespace collapsed.
pub fn normalise(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Word-level edit distance and reference length.
pub fn word_errors(reference: &str, hypothesis: &str) -> (usize, usize) {
    let r: Vec<String> = normalise(reference)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    let h: Vec<String> = normalise(hypothesis)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect();
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    (prev[h.len()], r.len())
}

pub fn write_wav_f32(path: &Path, rate: u32, channels: u16, interleaved: &[f32]) {
    let data: Vec<u8> = interleaved.iter().flat_map(|s| s.to_le_bytes()).collect();
    let block = channels as u32 * 4;
    let mut v = Vec::new();
    v.extend_from_slice(b"RIFF");
    v.extend_from_slice(&(36 + data.len() as u32).to_le_bytes());
    v.extend_from_slice(b"WAVEfmt ");
    v.extend_from_slice(&16u32.to_le_bytes());
    v.extend_from_slice(&3u16.to_le_bytes());
    v.extend_from_slice(&channels.to_le_bytes());
    v.extend_from_slice(&rate.to_le_bytes());
    v.extend_from_slice(&(rate * block).to_le_bytes());
    v.extend_from_slice(&(block as u16).to_le_bytes());
    v.extend_from_slice(&32u16.to_le_bytes());
    v.extend_from_slice(b"data");
    v.extend_from_slice(&(data.len() as u32).to_le_bytes());
    v.extend_from_slice(&data);
    std::fs::write(path, v).unwrap();
}
