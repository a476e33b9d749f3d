//! Opening an audio file: finding its container's reader, with the workarounds that keep
//! symphonia 0.5's readers from panicking or from taking a cut file for a whole one.

use crate::audio::AudioError;
use crate::audio_limits::check_wav_head;
use crate::audio_mp4::Mp4Problem;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use symphonia::core::codecs::CODEC_TYPE_NULL;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The first bytes of every Ogg page.
const OGG_MAGIC: &[u8] = b"OggS";
/// An Ogg page header: magic, version, type, granule position, serial, sequence, checksum and
/// the number of lacing values, which follow it.
const OGG_HEADER: usize = 27;
/// The longest Ogg page: its header, 255 lacing values and 255 segments of 255 bytes.
const MAX_OGG_PAGE: u64 = (OGG_HEADER + 255 + 255 * 255) as u64;
/// The end-of-stream flag in a page's header type.
const OGG_EOS: u8 = 0x04;

/// Whether an Ogg file ends with a whole page that closes its stream. A file cut short (an
/// interrupted download, a recorder that never finished) ends inside a page or on one
/// without the end-of-stream flag, and symphonia's Ogg reader would decode the pages before
/// the cut as if they were the whole recording.
fn ogg_ends_cleanly(file: &mut File, len: u64) -> std::io::Result<bool> {
    let from = len.saturating_sub(MAX_OGG_PAGE);
    file.seek(SeekFrom::Start(from))?;
    let mut tail = Vec::with_capacity((len - from) as usize);
    (&mut *file).take(len - from).read_to_end(&mut tail)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(last_ogg_page_type(&tail).is_some_and(|kind| kind & OGG_EOS != 0))
}

/// The header type of the page that ends exactly where `tail` ends, if one does.
fn last_ogg_page_type(tail: &[u8]) -> Option<u8> {
    let last_start = tail.len().checked_sub(OGG_HEADER)?;
    (0..=last_start)
        .rev()
        .filter(|&i| tail[i..].starts_with(OGG_MAGIC))
        .find_map(|i| {
            let page = &tail[i..];
            let segments = usize::from(page[OGG_HEADER - 1]);
            let lacing = page.get(OGG_HEADER..OGG_HEADER + segments)?;
            let body: usize = lacing.iter().map(|&l| usize::from(l)).sum();
            (OGG_HEADER + segments + body == page.len()).then_some(page[5])
        })
}

/// The first bytes of a Matroska or WebM file (an EBML header).
const EBML_MAGIC: &[u8] = b"\x1a\x45\xdf\xa3";

/// A file that tells symphonia it cannot seek. symphonia 0.5's Matroska reader, when it can
/// seek, jumps to every element the SeekHead lists and panics when one lies past the end of
/// a cut file (a recording whose upload or download stopped). Read front to back, it finds
/// Info and Tracks before the first Cluster, where writers put them; the Cues it then skips
/// only serve seeking, which decoding a whole file never does.
struct ForwardOnly(File);

impl Read for ForwardOnly {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Seek for ForwardOnly {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.0.seek(pos)
    }
}

impl MediaSource for ForwardOnly {
    fn is_seekable(&self) -> bool {
        false
    }

    fn byte_len(&self) -> Option<u64> {
        None
    }
}

/// Opens `path` and finds its container's reader; a file that is not audio, is cut inside
/// its headers or declares a WAV rate or channel count outside the limits is an error.
pub(crate) fn probe(path: &Path, name: &str) -> Result<Box<dyn FormatReader>, AudioError> {
    let limit_err = |p| AudioError::from_problem(name, p);
    let open_err = |cause| AudioError::Open {
        path: name.to_string(),
        cause,
    };
    let meta = std::fs::metadata(path).map_err(open_err)?;
    if meta.is_dir() {
        return Err(AudioError::IsDirectory {
            path: name.to_string(),
        });
    }
    if meta.len() == 0 {
        return Err(AudioError::Empty {
            path: name.to_string(),
        });
    }
    let mut file = File::open(path).map_err(open_err)?;
    let mut head = Vec::with_capacity(4096);
    (&mut file)
        .take(4096)
        .read_to_end(&mut head)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .map_err(open_err)?;
    check_wav_head(&head).map_err(limit_err)?;
    crate::audio_mp4::check(&mut file, meta.len()).map_err(|p| match p {
        Mp4Problem::Truncated => AudioError::Truncated {
            path: name.to_string(),
        },
        Mp4Problem::Table(reason) => AudioError::Invalid {
            path: name.to_string(),
            reason,
        },
    })?;
    if head.starts_with(OGG_MAGIC) && !ogg_ends_cleanly(&mut file, meta.len()).map_err(open_err)? {
        return Err(AudioError::Truncated {
            path: name.to_string(),
        });
    }
    let source: Box<dyn MediaSource> = if head.starts_with(EBML_MAGIC) {
        Box::new(ForwardOnly(file))
    } else {
        Box::new(file)
    };
    let mss = MediaSourceStream::new(source, Default::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    // Some symphonia readers assert on impossible headers; a panic there is bad input.
    let probed = guarded(|| {
        symphonia::default::get_probe().format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
    })
    .map_err(|_| AudioError::Format {
        path: name.to_string(),
        reason: "malformed header".into(),
    })?
    .map_err(|e| match e {
        SymError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            AudioError::Truncated {
                path: name.to_string(),
            }
        }
        e => AudioError::Format {
            path: name.to_string(),
            reason: e.to_string(),
        },
    })?;
    Ok(probed.format)
}

/// Whether `path` is a container (MP4, MOV, Matroska, WebM, Ogg...) whose every track is
/// audio: a recording or a memo rather than a video. False when it cannot be read.
pub fn is_audio_only(path: &Path) -> bool {
    let name = path.display().to_string();
    probe(path, &name).is_ok_and(|format| {
        let tracks = format.tracks();
        !tracks.is_empty()
            && tracks
                .iter()
                .all(|t| t.codec_params.codec != CODEC_TYPE_NULL)
    })
}

/// Runs a step of symphonia's, turning a panic into `Err`.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    catch_unwind(AssertUnwindSafe(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One Ogg page with `body` as its only packet.
    fn page(kind: u8, body: &[u8]) -> Vec<u8> {
        let mut p = OGG_MAGIC.to_vec();
        p.extend_from_slice(&[0, kind]);
        p.extend_from_slice(&[0; 20]);
        p.push(1);
        p.push(body.len() as u8);
        p.extend_from_slice(body);
        p
    }

    #[test]
    fn only_a_whole_last_page_with_the_end_flag_ends_an_ogg_stream() {
        let mut whole = page(0x02, b"first");
        whole.extend(page(0x00, b"OggS inside a packet"));
        whole.extend(page(OGG_EOS, b"last"));
        assert_eq!(last_ogg_page_type(&whole), Some(OGG_EOS));
        // Cut inside the last page: the one before does not end at the end either.
        assert_eq!(last_ogg_page_type(&whole[..whole.len() - 2]), None);
        // Cut after a whole page that does not close the stream.
        let open = &whole[..whole.len() - page(OGG_EOS, b"last").len()];
        assert_eq!(last_ogg_page_type(open), Some(0x00));
        assert_eq!(last_ogg_page_type(b"OggS"), None);
        assert_eq!(last_ogg_page_type(b""), None);
    }
}
