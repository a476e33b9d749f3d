//! Videos in the pipeline: a decoded video becomes media the stages already take (its audio
//! track a clip named `the video`, each sampled frame a picture named `frame at 12.0 s`), and
//! their results come back together with their times.

use crate::def::PipelineDef;
use crate::service::Media;
use percept_core::{AudioClip, Prompt, Segment, Tag, Transcript, VisionContext};
use percept_listen::{FileSource, ListenError};
use percept_media::AudioError;
use percept_video::{frame_label, Video};
use percept_whisper::{Options as WhisperOptions, Whisper, WhisperError};
use serde::Serialize;
use std::path::Path;

pub use percept_video::{decode_bytes, VideoError, VideoLimits, VIDEO_EXTENSIONS};

/// What the video's audio track is called to the model: its transcript is the data part
/// `transcript of the video` (never the file name).
pub const VIDEO_AUDIO: &str = "the video";

/// Video limits over `base` (the command line's or the server's preset): a video's duration
/// is capped by `runtime.max_video_s`, or when that is unset by `runtime.max_audio_s` (its
/// audio track is audio).
pub fn video_limits(def: &PipelineDef, base: VideoLimits) -> VideoLimits {
    match def.runtime.max_video_s.or(def.runtime.max_audio_s) {
        Some(s) => base.with_max_seconds(s),
        None => base,
    }
}

/// Whether the audio decoders cannot read the file at all (an unknown container, or none of
/// its tracks is audio they know), so that FFmpeg may, as a video's audio track.
fn not_audio(e: &AudioError) -> bool {
    matches!(e, AudioError::Format { .. } | AudioError::NoTrack { .. })
}

/// A video's audio track (16 kHz mono) for a file the audio decoders refused with
/// `refused`: that error again when FFmpeg cannot read it either (or the build has no
/// video), the video's own limit or missing track otherwise.
pub(crate) fn audio_track(
    path: &Path,
    max_seconds: u32,
    refused: AudioError,
) -> Result<AudioClip, AudioError> {
    let name = path.display().to_string();
    if !percept_video::VIDEO_ENABLED {
        return Err(refused);
    }
    match percept_video::decode_audio_track(path, max_seconds) {
        Ok(Some(clip)) => Ok(AudioClip {
            source: name,
            ..clip
        }),
        Ok(None) => Err(AudioError::NoTrack { path: name }),
        Err(VideoError::TooLong { max_seconds, .. }) => Err(AudioError::TooLong {
            path: name,
            max_seconds,
        }),
        Err(_) => Err(refused),
    }
}

/// Transcribes the file at `path`, streamed through the audio decoders, or when they cannot
/// read it, its audio track as a video (AVI, or a codec only FFmpeg reads).
pub fn transcribe_file(
    whisper: &Whisper,
    path: &Path,
    opts: &WhisperOptions,
) -> Result<Transcript, WhisperError> {
    match whisper.transcribe_file(path, opts) {
        Err(WhisperError::Audio(e)) if not_audio(&e) => {
            let clip = audio_track(path, opts.audio_limits.max_seconds, e)?;
            whisper.transcribe_clip(&clip, opts)
        }
        r => r,
    }
}

/// `listen --input`: the file played as a microphone would hear it, or when the audio
/// decoders cannot read it, its audio track as a video.
pub fn open_file_source(path: &Path, max_seconds: u32) -> Result<FileSource, ListenError> {
    match FileSource::open(path) {
        Err(ListenError::Audio(e)) if not_audio(&e) => {
            Ok(FileSource::from_clip(audio_track(path, max_seconds, e)?))
        }
        r => r,
    }
}

/// The video's audio track (when it has one) and its frames as media for the stages.
pub fn video_media(video: Video) -> (Option<Media>, Vec<Media>) {
    let audio = video.audio.map(|clip| Media::clip(VIDEO_AUDIO, clip));
    let frames = video
        .frames
        .into_iter()
        .map(|f| Media::image(frame_label(f.time_s), f.image))
        .collect();
    (audio, frames)
}

/// One sampled frame's results, with its time.
#[derive(Debug, Clone, Serialize)]
pub struct FrameSeen {
    pub time_s: f64,
    pub scene_change: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Tag>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The text OCR read in the frame (absent when none, or OCR is off).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr: Option<String>,
    /// The frame as the model reads it (facts, tags, labels and any text read in it).
    pub description: String,
}

/// What the pipeline made of one video: the transcript's timed segments, then each frame's
/// labels, tags and text with its time.
#[derive(Debug, Clone, Serialize)]
pub struct VideoSeen {
    pub duration_s: f64,
    pub width: u32,
    pub height: u32,
    pub video_codec: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio_codec: Option<String>,
    pub transcript: Option<Transcript>,
    pub frames: Vec<FrameSeen>,
}

impl VideoSeen {
    /// The video's facts, before any stage has run.
    pub fn new(video: &Video) -> Self {
        VideoSeen {
            duration_s: video.duration_s,
            width: video.width,
            height: video.height,
            video_codec: video.video_codec.clone(),
            audio_codec: video.audio_codec.clone(),
            transcript: None,
            frames: Vec::new(),
        }
    }

    /// Adds the frame results among `images` (those named by [`frame_label`]; `times` are the
    /// video's frame times, `scenes` whether each was a scene change).
    pub fn add_frames(&mut self, images: &[VisionContext], times: &[(f64, bool)]) {
        for (t, scene) in times {
            let label = frame_label(*t);
            if let Some(ctx) = images.iter().find(|c| c.source == label) {
                self.frames.push(FrameSeen {
                    time_s: *t,
                    scene_change: *scene,
                    labels: ctx.labels.clone(),
                    tags: ctx.tags.clone(),
                    ocr: ctx.ocr.clone(),
                    description: ctx.describe(),
                });
            }
        }
    }
}

/// The transcript's segments with their times, one a line: `[0.0-3.2 s] words`.
pub fn timed_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| format!("[{:.1}-{:.1} s] {}", s.start, s.end, s.text.trim()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Labels the video's parts in `prompt`: frames by their time (`frame at 12.0 s`, not
/// `image N`), the transcript with its segments' times. `images` are the described pictures
/// in prompt order, `transcript` the video's.
pub fn label_parts(prompt: &mut Prompt, images: &[VisionContext], transcript: Option<&Transcript>) {
    if let Some(t) = transcript {
        let label = format!("transcript of {VIDEO_AUDIO}");
        if let Some(part) = prompt.context.iter_mut().find(|p| p.label == label) {
            if !t.segments.is_empty() {
                part.text = timed_text(&t.segments);
            }
        }
    }
    // Image parts follow the transcripts, in the order of `images`.
    let first = prompt.context.len().saturating_sub(images.len());
    for (part, ctx) in prompt.context[first..].iter_mut().zip(images) {
        if ctx.source.starts_with("frame at ") && ctx.facts.format == "video frame" {
            part.label = ctx.source.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percept_core::{DecodedImage, Untrusted};

    #[test]
    fn frames_and_transcript_are_labelled_by_time() {
        let ctx = |source: &str, format: &str| {
            let mut img = DecodedImage {
                source: source.into(),
                width: 1,
                height: 1,
                rgb: vec![0; 3],
                facts: Default::default(),
            };
            img.facts.format = format.into();
            crate::load::facts_only(&img)
        };
        let part = |label: &str| Untrusted {
            label: label.into(),
            text: "x".into(),
        };
        let mut prompt = Prompt {
            system: None,
            history: Vec::new(),
            question: None,
            context: vec![
                part("transcript of the video"),
                part("image 1"),
                part("image 2"),
            ],
        };
        let images = [ctx("cat.png", "png"), ctx("frame at 4.0 s", "video frame")];
        let t = Transcript {
            source: VIDEO_AUDIO.into(),
            language: None,
            text: "hello there".into(),
            segments: vec![Segment {
                start: 0.0,
                end: 1.5,
                text: " hello there".into(),
                avg_logprob: 0.0,
                no_speech_prob: 0.0,
            }],
        };
        label_parts(&mut prompt, &images, Some(&t));
        let labels: Vec<&str> = prompt.context.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            ["transcript of the video", "image 1", "frame at 4.0 s"]
        );
        assert_eq!(prompt.context[0].text, "[0.0-1.5 s] hello there");
    }

    #[test]
    fn max_video_s_then_max_audio_s_cap_a_video() {
        let mut def = crate::def::load("default").expect("default");
        def.runtime.max_audio_s = None;
        let base = VideoLimits::SERVER;
        assert_eq!(video_limits(&def, base), base);
        def.runtime.max_audio_s = Some(60);
        assert_eq!(video_limits(&def, base).max_seconds, 60);
        def.runtime.max_video_s = Some(600);
        assert_eq!(video_limits(&def, base).max_seconds, 600);
        assert_eq!(video_limits(&def, base).max_frames, base.max_frames);
    }

    #[test]
    fn a_file_no_decoder_reads_keeps_the_audio_error() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("notes.wav");
        std::fs::write(&path, b"just some text, not audio at all").expect("write");
        let err = open_file_source(&path, 60)
            .err()
            .expect("an error")
            .to_string();
        assert!(
            err.contains("notes.wav") && err.contains("not a recognised audio format"),
            "{err}"
        );
    }
}
