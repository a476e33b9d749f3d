//! Audio from a request (decoded on the pipeline's speech thread), and the transcription
//! response formats (json, text, srt, vtt, verbose_json).

use crate::error::ApiError;
use percept_core::Transcript;
use serde_json::json;

/// Audio bytes from a request, with the field they came from.
#[derive(Debug, Clone)]
pub struct AudioInput {
    pub name: String,
    pub param: String,
    pub bytes: Vec<u8>,
    /// File extension hint for the container probe (`wav`, `mp3`...).
    pub ext: Option<String>,
}

/// `response_format` of the audio endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self, ApiError> {
        Ok(match s {
            "json" => Format::Json,
            "text" => Format::Text,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            "verbose_json" => Format::VerboseJson,
            other => {
                return Err(ApiError::invalid(
                    "response_format",
                    format!("`{other}` is not one of json, text, srt, vtt, verbose_json"),
                ))
            }
        })
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json | Format::VerboseJson => "application/json",
            Format::Text | Format::Srt => "text/plain; charset=utf-8",
            Format::Vtt => "text/vtt; charset=utf-8",
        }
    }
}

/// The response body for `t` in `format`; `task` is `transcribe` or `translate`.
pub fn render(t: &Transcript, format: Format, task: &str, duration: f64) -> String {
    match format {
        Format::Json => json!({ "text": t.text.trim() }).to_string(),
        Format::Text => format!("{}\n", t.text.trim()),
        Format::Srt => t.srt(),
        Format::Vtt => t.vtt(),
        Format::VerboseJson => {
            let segments: Vec<_> = t
                .segments
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    json!({
                        "id": i, "start": s.start, "end": s.end, "text": s.text,
                        "avg_logprob": s.avg_logprob, "no_speech_prob": s.no_speech_prob,
                    })
                })
                .collect();
            json!({
                "task": task,
                "language": t.language.clone().unwrap_or_else(|| "english".into()),
                "duration": duration,
                "text": t.text.trim(),
                "segments": segments,
            })
            .to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use percept_core::Segment;

    fn transcript() -> Transcript {
        Transcript {
            source: "a.wav".into(),
            language: Some("en".into()),
            text: " Hello there.".into(),
            segments: vec![Segment {
                start: 0.0,
                end: 3725.5,
                text: " Hello there.".into(),
                avg_logprob: -0.2,
                no_speech_prob: 0.01,
            }],
        }
    }

    #[test]
    fn srt_and_vtt_timestamps() {
        let t = transcript();
        assert_eq!(
            render(&t, Format::Srt, "transcribe", 1.0),
            "1\n00:00:00,000 --> 01:02:05,500\nHello there.\n\n"
        );
        assert!(render(&t, Format::Vtt, "transcribe", 1.0)
            .starts_with("WEBVTT\n\n00:00:00.000 --> 01:02:05.500\n"));
    }

    #[test]
    fn unknown_format_names_the_field() {
        let e = Format::parse("xml").unwrap_err();
        assert_eq!(e.param.as_deref(), Some("response_format"));
    }
}
