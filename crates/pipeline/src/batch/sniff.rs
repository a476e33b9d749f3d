//! Media type from the first bytes of a file, never from its name.

use super::record::Kind;
use std::io::Read;
use std::path::Path;

/// Enough for every magic number `infer` knows.
const SNIFF_BYTES: u64 = 8192;

/// What the content says: the kind, and a name for it used in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: Kind,
    pub detected: String,
}

pub fn sniff_file(path: &Path) -> std::io::Result<Sniffed> {
    let mut head = Vec::new();
    std::fs::File::open(path)?
        .take(SNIFF_BYTES)
        .read_to_end(&mut head)?;
    let mut sniffed = sniff(&head);
    // A browser's WebM recording or a phone's MP4 memo has a video container's magic bytes;
    // its tracks say whether it is audio.
    if VIDEO_CONTAINERS.contains(&sniffed.detected.as_str()) {
        sniffed.kind = if percept_media::is_audio_only(path) {
            Kind::Audio
        } else {
            Kind::Video
        };
    }
    Ok(sniffed)
}

/// Containers that `infer` names as video but that may hold only audio.
const VIDEO_CONTAINERS: &[&str] = &[
    "video/x-msvideo",
    "video/webm",
    "video/x-matroska",
    "video/mp4",
    "video/quicktime",
    "video/x-m4v",
];

pub fn sniff(head: &[u8]) -> Sniffed {
    if let Some(t) = infer::get(head) {
        let kind = match t.matcher_type() {
            infer::MatcherType::Image => Kind::Image,
            infer::MatcherType::Audio => Kind::Audio,
            _ => Kind::Other,
        };
        return Sniffed {
            kind,
            detected: t.mime_type().to_string(),
        };
    }
    let detected = if head.is_empty() {
        "empty file"
    } else if looks_like_text(head) {
        "text"
    } else {
        "unknown binary data"
    };
    Sniffed {
        kind: Kind::Other,
        detected: detected.to_string(),
    }
}

fn looks_like_text(head: &[u8]) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        // A character cut by the sniff window still counts as text.
        Err(e) => e.error_len().is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_bytes_decide_not_names() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").kind, Kind::Image);
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt ").kind, Kind::Audio);
        assert_eq!(sniff(b"fLaC\0\0\0\x22").kind, Kind::Audio);
        let text = sniff(b"hello, not a wav\n");
        assert_eq!((text.kind, text.detected.as_str()), (Kind::Other, "text"));
        assert_eq!(
            sniff(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x17]).detected,
            "unknown binary data"
        );
        assert_eq!(sniff(b"").detected, "empty file");
    }
}
