//! Media a job carries: a file the caller names, or bytes from a request. Decoding happens on
//! the stage thread that uses it, so a large file never stalls the caller (or an async runtime).

use super::error::JobError;
use percept_core::{AudioClip, DecodedImage};
use percept_media::image::{decode_image_bytes, decode_image_file, ImageOptions};
use percept_media::AudioLimits;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// Where one input's bytes are.
#[derive(Debug, Clone)]
pub enum MediaSource {
    Path(PathBuf),
    /// `ext` hints the container probe (`wav`, `mp3`...).
    Bytes {
        bytes: Vec<u8>,
        ext: Option<String>,
    },
    /// Already decoded (a video's frame).
    Image(Arc<DecodedImage>),
    /// Already 16 kHz mono within the limits (a video's audio track).
    Clip(Arc<AudioClip>),
}

/// One audio clip or image.
#[derive(Debug, Clone)]
pub struct Media {
    /// Shown to the model and in results: a file path, or `image 1`, or an upload's name.
    pub name: String,
    pub source: MediaSource,
}

impl Media {
    pub fn file(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Media {
            name: path.display().to_string(),
            source: MediaSource::Path(path),
        }
    }

    pub fn bytes(name: impl Into<String>, bytes: Vec<u8>, ext: Option<String>) -> Self {
        Media {
            name: name.into(),
            source: MediaSource::Bytes { bytes, ext },
        }
    }

    /// A decoded picture (a video's frame), named `name`.
    pub fn image(name: impl Into<String>, image: DecodedImage) -> Self {
        Media {
            name: name.into(),
            source: MediaSource::Image(Arc::new(image)),
        }
    }

    /// A decoded 16 kHz mono clip (a video's audio track), named `name`.
    pub fn clip(name: impl Into<String>, clip: AudioClip) -> Self {
        Media {
            name: name.into(),
            source: MediaSource::Clip(Arc::new(clip)),
        }
    }
}

/// 16 kHz mono audio within `limits`; bytes go through a temporary file (the decoder reads
/// files), removed before this returns, and its path never appears in an error.
pub fn decode_audio(index: usize, m: &Media, limits: &AudioLimits) -> Result<AudioClip, JobError> {
    let bad = |message: String| JobError::Audio {
        index,
        name: m.name.clone(),
        message,
    };
    let rate = percept_media::SPEECH_RATE;
    let mut clip = match &m.source {
        MediaSource::Path(p) => {
            decode_audio_file(p, rate, limits).map_err(|e| bad(e.to_string()))?
        }
        MediaSource::Bytes { bytes, ext } => {
            if bytes.is_empty() {
                return Err(bad("it is empty".into()));
            }
            let ext = ext
                .as_deref()
                .filter(|e| !e.is_empty() && e.chars().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or("bin");
            let file = tempfile::Builder::new()
                .prefix("percept-audio-")
                .suffix(&format!(".{ext}"))
                .tempfile()
                .and_then(|mut f| f.write_all(bytes).and_then(|_| f.flush()).map(|_| f))
                .map_err(|e| bad(format!("cannot stage it in a temporary file: {e}")))?;
            let tmp = file.path().display().to_string();
            let clip = decode_audio_file(file.path(), rate, limits)
                .map_err(|e| bad(e.to_string().replace(&tmp, &m.name)));
            drop(file);
            clip?
        }
        MediaSource::Clip(clip) => AudioClip::clone(clip),
        MediaSource::Image(_) => return Err(bad("it is a picture, not audio".into())),
    };
    clip.source = m.name.clone();
    Ok(clip)
}

/// An audio file, or a video's audio track: a file the audio decoders cannot read is tried
/// as a video (AVI, or a codec only FFmpeg reads) before its audio error is given.
fn decode_audio_file(
    path: &std::path::Path,
    rate: u32,
    limits: &AudioLimits,
) -> Result<AudioClip, String> {
    match percept_media::decode_file_with(path, rate, limits) {
        Ok(clip) => Ok(clip),
        // A video's audio track comes out at 16 kHz only.
        Err(e) if rate != percept_media::SPEECH_RATE => Err(e.to_string()),
        Err(e) => crate::video::audio_track(path, limits.max_seconds, e).map_err(|e| e.to_string()),
    }
}

pub fn decode_image(
    index: usize,
    m: &Media,
    opts: &ImageOptions,
) -> Result<DecodedImage, JobError> {
    let decoded = match &m.source {
        MediaSource::Path(p) => decode_image_file(p, opts),
        MediaSource::Bytes { bytes, .. } => decode_image_bytes(&m.name, bytes, opts),
        MediaSource::Image(img) => Ok(DecodedImage {
            source: m.name.clone(),
            ..DecodedImage::clone(img)
        }),
        MediaSource::Clip(_) => Err(percept_media::image::ImageError::NotAnImage {
            source_name: m.name.clone(),
        }),
    };
    decoded.map_err(|error| JobError::Image {
        index,
        name: m.name.clone(),
        error: Box::new(error),
    })
}
