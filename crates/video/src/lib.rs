//! Video files: the audio track as a 16 kHz mono clip for Whisper, and frames sampled on a
//! time step and on scene changes as RGB images for the vision stage.
//!
//! Decoding goes through FFmpeg's libraries (the `video` feature, FFmpeg 5.1 from Debian).
//! A build without the feature refuses every video with [`VIDEO_DISABLED`], one line, and
//! the rest of percept works as before. The pure part (sampling and scene detection) needs
//! no FFmpeg and is tested on its own.

#[cfg(feature = "video")]
mod ffmpeg;
mod sample;

pub use sample::{luma_histogram, scene_distance, Sampler};

use percept_core::{AudioClip, DecodedImage};
use std::path::Path;

/// Whether this build decodes video (the `video` cargo feature).
pub const VIDEO_ENABLED: bool = cfg!(feature = "video");

/// The one line a build without the `video` feature gives for every video.
pub const VIDEO_DISABLED: &str = "video is not supported by this build (it was built without \
     the `video` feature, which needs FFmpeg's libraries: libavformat-dev libavcodec-dev \
     libswscale-dev libavutil-dev)";

/// File extensions read as video.
pub const VIDEO_EXTENSIONS: &[&str] = &["mp4", "m4v", "mov", "mkv", "webm", "avi"];

/// Bounds on one video, checked while it decodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoLimits {
    /// Longest video decoded, in seconds; a longer one is refused (declared or decoded).
    pub max_seconds: u32,
    /// Most frames handed on; the time step widens so that they cover the whole video.
    pub max_frames: usize,
    /// Seconds between sampled frames.
    pub step_s: f64,
    /// Luma-histogram distance (0..=1) between checks that counts as a scene change.
    pub scene_threshold: f32,
    /// Longest side of a handed-on frame, in pixels (frames are scaled down to it).
    pub frame_side: u32,
    /// Largest picture accepted, in pixels (width times height), before any is decoded.
    pub max_pixels: u64,
}

impl VideoLimits {
    /// For the command line: 4 hours, 16 frames, one every 2 s.
    pub const CLI: VideoLimits = VideoLimits {
        max_seconds: 4 * 3600,
        max_frames: 16,
        step_s: 2.0,
        scene_threshold: 0.3,
        frame_side: 768,
        max_pixels: 8192 * 8192,
    };

    /// For uploads from clients the server does not trust: 1 hour, 8 frames.
    pub const SERVER: VideoLimits = VideoLimits {
        max_seconds: 3600,
        max_frames: 8,
        ..VideoLimits::CLI
    };

    pub const fn with_max_seconds(self, max_seconds: u32) -> Self {
        VideoLimits {
            max_seconds,
            ..self
        }
    }
}

impl Default for VideoLimits {
    fn default() -> Self {
        Self::CLI
    }
}

/// One sampled frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Seconds from the start of the video.
    pub time_s: f64,
    /// Taken because the picture changed, not (only) because the time step passed.
    pub scene_change: bool,
    /// RGB, its `source` is [`frame_label`] (never the file name).
    pub image: DecodedImage,
}

/// What one video holds.
#[derive(Debug, Clone)]
pub struct Video {
    pub source: String,
    /// Seconds: the longest of what was decoded and what the container declares.
    pub duration_s: f64,
    /// The audio track at 16 kHz mono, when there is one.
    pub audio: Option<AudioClip>,
    pub frames: Vec<Frame>,
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    pub audio_codec: Option<String>,
}

/// How a frame is named to a model and in results: `frame at 12.0 s`.
pub fn frame_label(time_s: f64) -> String {
    format!("frame at {time_s:.1} s")
}

#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{path}: {VIDEO_DISABLED}")]
    Disabled { path: String },
    #[error("{path}: not a readable video ({message})")]
    Invalid { path: String, message: String },
    #[error("{path}: the video is longer than the {max_seconds} s limit")]
    TooLong { path: String, max_seconds: u32 },
}

impl VideoError {
    /// The same error naming `name` instead of `path` (for a temporary file).
    fn renamed(self, path: &str, name: &str) -> Self {
        let r = |p: String| p.replace(path, name);
        match self {
            VideoError::Disabled { path: p } => VideoError::Disabled { path: r(p) },
            VideoError::Invalid { path: p, message } => VideoError::Invalid {
                path: r(p),
                message: r(message),
            },
            VideoError::TooLong {
                path: p,
                max_seconds,
            } => VideoError::TooLong {
                path: r(p),
                max_seconds,
            },
        }
    }
}

/// Whether `path` names a video by its extension.
pub fn has_video_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Decodes the video at `path`: its audio track and sampled frames, within `limits`.
/// A truncated or hostile file is an error naming it, never a panic.
pub fn decode_file(path: &Path, limits: &VideoLimits) -> Result<Video, VideoError> {
    let name = path.display().to_string();
    #[cfg(feature = "video")]
    {
        match std::panic::catch_unwind(|| ffmpeg::decode(path, &name, limits)) {
            Ok(r) => r,
            Err(_) => Err(VideoError::Invalid {
                path: name,
                message: "the decoder failed on it".into(),
            }),
        }
    }
    #[cfg(not(feature = "video"))]
    {
        let _ = limits;
        Err(VideoError::Disabled { path: name })
    }
}

/// Only the audio track of the video at `path` (16 kHz mono), its pictures skipped unread:
/// for a transcription of a video in a format the audio decoders do not read (AVI, AC-3...).
/// `None` when it has no audio track.
pub fn decode_audio_track(path: &Path, max_seconds: u32) -> Result<Option<AudioClip>, VideoError> {
    let limits = VideoLimits {
        max_frames: 0,
        ..VideoLimits::CLI.with_max_seconds(max_seconds)
    };
    decode_file(path, &limits).map(|v| v.audio)
}

/// [`decode_file`] on bytes (an upload): they go through a temporary file, removed before
/// this returns, and errors name `name`, never the temporary path.
pub fn decode_bytes(
    name: &str,
    bytes: &[u8],
    ext: Option<&str>,
    limits: &VideoLimits,
) -> Result<Video, VideoError> {
    use std::io::Write;
    let invalid = |message: String| VideoError::Invalid {
        path: name.to_string(),
        message,
    };
    if bytes.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    let ext = ext
        .filter(|e| !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or("bin");
    let file = tempfile::Builder::new()
        .prefix("percept-video-")
        .suffix(&format!(".{ext}"))
        .tempfile()
        .and_then(|mut f| f.write_all(bytes).and_then(|_| f.flush()).map(|_| f))
        .map_err(|e| invalid(format!("cannot stage it in a temporary file: {e}")))?;
    let tmp = file.path().display().to_string();
    let mut video = decode_file(file.path(), limits).map_err(|e| e.renamed(&tmp, name))?;
    video.source = name.to_string();
    Ok(video)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_extensions() {
        assert_eq!(frame_label(12.0), "frame at 12.0 s");
        assert!(has_video_extension(Path::new("a/b.MP4")));
        assert!(has_video_extension(Path::new("x.webm")));
        assert!(!has_video_extension(Path::new("x.wav")));
    }

    #[test]
    fn garbage_is_an_error_naming_the_file() {
        let err = decode_bytes(
            "clip.mp4",
            b"not a video at all",
            Some("mp4"),
            &VideoLimits::CLI,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("clip.mp4: "), "{err}");
        assert!(!err.contains("percept-video-"), "{err}");
        if !VIDEO_ENABLED {
            assert!(err.contains("`video` feature"), "{err}");
        }
        let err = decode_bytes("empty.mp4", b"", None, &VideoLimits::CLI).unwrap_err();
        assert!(err.to_string().contains("empty"));
    }
}
