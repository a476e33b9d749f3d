//! Whether a JPEG file ends before its end-of-image marker.
//!
//! The `image` crate decodes JPEG leniently: a file cut short decodes without an error and
//! the missing rows come out gray. That is worth keeping (the top of a photo still says what
//! it shows) but not worth hiding, so the marker structure is walked here to tell.

const EOI: u8 = 0xD9;
const SOI: u8 = 0xD8;
const TEM: u8 = 0x01;

/// True when `bytes` (a JPEG, starting at its SOI) has no EOI marker: the file stops in a
/// segment or in the entropy-coded data. Bytes after the EOI (some cameras append data)
/// are not looked at.
pub(crate) fn is_truncated(bytes: &[u8]) -> bool {
    let n = bytes.len();
    let mut i = 0;
    loop {
        // Entropy-coded data runs until the next 0xFF; header segments start right on one.
        while i < n && bytes[i] != 0xFF {
            i += 1;
        }
        // Any number of 0xFF may pad before a marker byte.
        while i < n && bytes[i] == 0xFF {
            i += 1;
        }
        let Some(&marker) = bytes.get(i) else {
            return true;
        };
        i += 1;
        match marker {
            EOI => return false,
            // A stuffed zero in entropy data, restart markers and the markers without a
            // length field carry nothing to skip.
            0x00 | SOI | TEM | 0xD0..=0xD7 => {}
            _ => {
                let Some(len) = bytes.get(i..i + 2) else {
                    return true;
                };
                // The length counts its own two bytes; a segment (an EXIF thumbnail
                // included) is skipped whole, so an EOI inside it does not count.
                let len = usize::from(u16::from_be_bytes([len[0], len[1]])).max(2);
                i += len;
                if i > n {
                    return true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SOI, one APP segment holding an EOI, SOS with entropy data (stuffed FF00 and a
    /// restart marker), then EOI.
    fn tiny_jpeg() -> Vec<u8> {
        let mut v = vec![0xFF, SOI];
        v.extend_from_slice(&[0xFF, 0xE1, 0x00, 0x06, 0xFF, EOI, 0x12, 0x34]);
        v.extend_from_slice(&[0xFF, 0xDA, 0x00, 0x04, 0x01, 0x02]);
        v.extend_from_slice(&[0x55, 0xFF, 0x00, 0x66, 0xFF, 0xD0, 0x77, 0xFF, 0xFF]);
        v.extend_from_slice(&[0xFF, EOI]);
        v
    }

    #[test]
    fn complete_file_and_trailing_bytes_are_not_truncated() {
        let v = tiny_jpeg();
        assert!(!is_truncated(&v));
        let mut tail = v.clone();
        tail.extend_from_slice(b"appended by a camera");
        assert!(!is_truncated(&tail));
    }

    #[test]
    fn every_cut_before_the_eoi_is_truncated() {
        let v = tiny_jpeg();
        for cut in 0..v.len() - 1 {
            assert!(is_truncated(&v[..cut]), "cut at {cut}");
        }
    }
}
