//! The chat request body: OpenAI messages and content parts, and where media bytes come from
//! (data: URLs, `file://` under `--allow-dir`, never the network).

use crate::error::ApiError;
use crate::json::from_value;
use crate::speech::AudioInput;
use crate::vision::ImageInput;
use base64::Engine as _;
use percept_core::{Turn, TurnRole};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};

#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    #[serde(default)]
    pub model: Option<String>,
    pub messages: Vec<ChatMessage>,
    #[serde(default)]
    pub stream: bool,
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub max_tokens: Option<u32>,
    pub max_completion_tokens: Option<u32>,
    pub seed: Option<u64>,
    pub stop: Option<Stop>,
    pub n: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum Stop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Deserialize)]
pub struct ChatMessage {
    pub role: Role,
    #[serde(default)]
    pub content: Value,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: ImageUrl,
    },
    InputAudio {
        input_audio: InputAudio,
    },
    /// A file sent inline (OpenAI's `file` part); this server reads videos from it.
    File {
        file: FilePart,
    },
}

#[derive(Debug, Deserialize)]
struct FilePart {
    #[serde(default)]
    file_data: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ImageUrl {
    url: String,
}

#[derive(Debug, Deserialize)]
struct InputAudio {
    data: String,
    format: String,
}

/// Where media may come from; built from the server options.
#[derive(Debug, Clone, Default)]
pub struct MediaPolicy {
    /// Canonical directories `file://` URLs may point into.
    pub allow_dirs: Vec<PathBuf>,
    pub max_bytes: usize,
}

/// The messages split the way percept's prompt wants them.
#[derive(Debug, Default)]
pub struct ChatInputs {
    pub system: Option<String>,
    pub history: Vec<Turn>,
    /// Typed text of the last user message.
    pub question: Option<String>,
    pub images: Vec<ImageInput>,
    pub audio: Vec<AudioInput>,
    /// Videos (at most one): a `file` part or a `data:video/...` image URL.
    pub videos: Vec<AudioInput>,
}

/// Only the last user message's media goes through the stages; earlier media is noted in the
/// history as a placeholder, since those turns were already answered.
pub fn split(messages: Vec<ChatMessage>, policy: &MediaPolicy) -> Result<ChatInputs, ApiError> {
    let last_user = messages
        .iter()
        .rposition(|m| m.role == Role::User)
        .ok_or_else(|| {
            ApiError::invalid("messages", "needs at least one message with role `user`")
        })?;
    if last_user + 1 != messages.len() {
        return Err(ApiError::invalid(
            format!("messages[{}]", messages.len() - 1),
            "the last message must have role `user`",
        ));
    }
    let mut out = ChatInputs::default();
    let mut systems = Vec::new();
    for (i, m) in messages.into_iter().enumerate() {
        let param = format!("messages[{i}].content");
        let parts = parts(m.content, &param, m.role)?;
        if m.role == Role::Tool {
            return Err(ApiError::invalid(
                format!("messages[{i}].role"),
                "tool messages are not supported (this server has no tools)",
            ));
        }
        let mut texts = Vec::new();
        for (j, p) in parts.into_iter().enumerate() {
            let pparam = format!("{param}[{j}]");
            match p {
                Part::Text { text } => texts.push(text),
                Part::ImageUrl { image_url }
                    if i == last_user && video_mime(&image_url.url).is_some() =>
                {
                    let param = format!("{pparam}.image_url.url");
                    let ext = video_mime(&image_url.url);
                    let bytes = data_url(&image_url.url, &param)?;
                    push_video(&mut out, bytes, ext, param)?;
                }
                Part::File { file } if i == last_user => {
                    let param = format!("{pparam}.file.file_data");
                    let (bytes, ext) = video_file(&file, &param)?;
                    push_video(&mut out, bytes, ext, param)?;
                }
                Part::ImageUrl { image_url } if i == last_user => {
                    let n = out.images.len() + 1;
                    let name = format!("image {n}");
                    let param = format!("{pparam}.image_url.url");
                    out.images.push(image(&image_url.url, name, param, policy)?);
                }
                Part::InputAudio { input_audio } if i == last_user => {
                    let n = out.audio.len() + 1;
                    out.audio.push(audio(&input_audio, n, &pparam)?);
                }
                Part::ImageUrl { .. } | Part::InputAudio { .. } | Part::File { .. }
                    if m.role != Role::User =>
                {
                    return Err(ApiError::invalid(
                        pparam,
                        "only user messages may carry media",
                    ));
                }
                Part::ImageUrl { .. } => texts.push("[image shown earlier]".into()),
                Part::InputAudio { .. } => texts.push("[audio sent earlier]".into()),
                Part::File { .. } => texts.push("[video sent earlier]".into()),
            }
        }
        let text = texts.join("\n");
        match m.role {
            Role::System | Role::Developer => systems.push(text),
            Role::User if i == last_user => {
                out.question = (!text.trim().is_empty()).then_some(text);
            }
            Role::User => out.history.push(Turn {
                role: TurnRole::User,
                text,
            }),
            Role::Assistant => out.history.push(Turn {
                role: TurnRole::Assistant,
                text,
            }),
            Role::Tool => {}
        }
    }
    if !systems.is_empty() {
        out.system = Some(systems.join("\n\n"));
    }
    // A video's words are data: they never stand in for the question.
    if out.question.is_none() && out.audio.is_empty() && !out.videos.is_empty() {
        return Err(ApiError::invalid(
            format!("messages[{last_user}].content"),
            "ask something about the video in a text part (its words are never the question)",
        ));
    }
    if out.question.is_none()
        && out.audio.is_empty()
        && out.images.is_empty()
        && out.videos.is_empty()
    {
        return Err(ApiError::invalid(
            format!("messages[{last_user}].content"),
            "the last user message is empty",
        ));
    }
    Ok(out)
}

/// The container extension for a `data:video/...` URL (`None`: not a video).
fn video_mime(url: &str) -> Option<String> {
    let meta = url.strip_prefix("data:")?.split([';', ',']).next()?;
    let sub = meta
        .to_ascii_lowercase()
        .strip_prefix("video/")?
        .to_string();
    Some(
        match sub.as_str() {
            "quicktime" => "mov",
            "x-matroska" => "mkv",
            "x-msvideo" | "avi" => "avi",
            "webm" => "webm",
            _ => "mp4",
        }
        .to_string(),
    )
}

/// A `file` part's bytes and container hint; only videos are read from it.
fn video_file(f: &FilePart, param: &str) -> Result<(Vec<u8>, Option<String>), ApiError> {
    let data = f.file_data.as_deref().ok_or_else(|| {
        ApiError::invalid(
            param,
            "missing; send the file inline as base64 or a data: URL",
        )
    })?;
    let by_name = f
        .filename
        .as_deref()
        .and_then(|n| n.rsplit_once('.'))
        .map(|(_, e)| e.to_ascii_lowercase())
        .filter(|e| percept_pipeline::video::VIDEO_EXTENSIONS.contains(&e.as_str()));
    let (bytes, ext) = if data.starts_with("data:") {
        (data_url(data, param)?, video_mime(data).or(by_name))
    } else {
        (decode_base64(data, param)?, by_name)
    };
    if ext.is_none() {
        return Err(ApiError::invalid(
            param,
            "this server reads videos (MP4, MOV, MKV, WebM, AVI) from `file` parts; name it \
             with a video extension or send a data:video/... URL",
        ));
    }
    Ok((bytes, ext))
}

fn push_video(
    out: &mut ChatInputs,
    bytes: Vec<u8>,
    ext: Option<String>,
    param: String,
) -> Result<(), ApiError> {
    if !out.videos.is_empty() {
        return Err(ApiError::invalid(param, "one video per request"));
    }
    out.videos.push(AudioInput {
        name: "video".into(),
        param,
        bytes,
        ext,
    });
    Ok(())
}

fn parts(content: Value, param: &str, role: Role) -> Result<Vec<Part>, ApiError> {
    match content {
        Value::String(text) => Ok(vec![Part::Text { text }]),
        Value::Null if role == Role::Assistant => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(j, v)| from_value::<Part>(v, &format!("{param}[{j}]")))
            .collect(),
        Value::Null => Err(ApiError::invalid(
            param,
            "missing; give a string or an array of content parts",
        )),
        other => Err(ApiError::invalid(
            param,
            format!(
                "expected a string or an array of content parts, got {}",
                kind(&other)
            ),
        )),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Base64 with the padding and line breaks clients add.
pub fn decode_base64(data: &str, param: &str) -> Result<Vec<u8>, ApiError> {
    let clean: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|e| {
            ApiError::invalid(param, format!("bad base64 data: {e}")).with_code("invalid_base64")
        })
}

/// `data:[<mime>];base64,<data>` to bytes.
pub fn data_url(url: &str, param: &str) -> Result<Vec<u8>, ApiError> {
    let rest = &url["data:".len()..];
    let (meta, data) = rest
        .split_once(',')
        .ok_or_else(|| ApiError::invalid(param, "data: URL has no comma before the data"))?;
    if !meta.split(';').any(|p| p.eq_ignore_ascii_case("base64")) {
        return Err(ApiError::invalid(
            param,
            "only base64 data: URLs are supported (data:<type>;base64,...)",
        ));
    }
    decode_base64(data, param)
}

fn image(
    url: &str,
    name: String,
    param: String,
    policy: &MediaPolicy,
) -> Result<ImageInput, ApiError> {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    if lower.starts_with("data:") {
        let bytes = data_url(url, &param)?;
        return Ok(ImageInput { name, param, bytes });
    }
    if lower.starts_with("file://") {
        let path = allowed_file(&url["file://".len()..], &param, policy)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or(name);
        let bytes = read_limited(&path, &param, policy.max_bytes)?;
        return Ok(ImageInput {
            name: file_name,
            param,
            bytes,
        });
    }
    if lower.starts_with("http://") || lower.starts_with("https://") {
        // The server never fetches: a URL would let any client make it reach other hosts.
        let msg = "remote image URLs are refused: this server never fetches; send the image as a data: URL";
        return Err(ApiError::invalid(param, msg).with_code("remote_url_refused"));
    }
    Err(ApiError::invalid(
        param,
        "unsupported image URL; use a data: URL (data:image/png;base64,...) or file:// under --allow-dir",
    ))
}

/// Resolves a `file://` path and checks that, after following links and `..`, it is inside
/// one of the allowed directories.
fn allowed_file(raw: &str, param: &str, policy: &MediaPolicy) -> Result<PathBuf, ApiError> {
    if policy.allow_dirs.is_empty() {
        return Err(ApiError::invalid(
            param,
            "file:// URLs are refused (the server was started without --allow-dir DIR)",
        ));
    }
    // RFC 8089: `file:///p` and `file://localhost/p` name the local path /p; a file URL
    // naming another host is not ours to read.
    let (host, rest) = match raw.find('/') {
        Some(i) => raw.split_at(i),
        None => (raw, ""),
    };
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return Err(ApiError::invalid(
            param,
            "file:// URLs must name this machine (file:///path or file://localhost/path)",
        ));
    }
    let decoded = percent_decode(rest);
    let outside = || {
        ApiError::invalid(
            param,
            format!("{decoded} is outside the directories allowed with --allow-dir"),
        )
        .with_code("path_not_allowed")
    };
    let inside = |p: &Path| policy.allow_dirs.iter().any(|d| p.starts_with(d));
    // Outside the allowed directories, a missing file and an existing one get the same
    // answer, so the error cannot be used to probe the rest of the disk.
    match Path::new(&decoded).canonicalize() {
        Ok(canon) if inside(&canon) => Ok(canon),
        Ok(_) => Err(outside()),
        Err(_) if !inside(&lexical(Path::new(&decoded))) => Err(outside()),
        Err(e) => Err(ApiError::invalid(
            param,
            format!("cannot open {decoded}: {e}"),
        )),
    }
}

/// `path` with `.` and `..` resolved without touching the disk (for a path that does not
/// exist, so `canonicalize` cannot say where it points).
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

fn read_limited(path: &Path, param: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    let len = std::fs::metadata(path)
        .map_err(|e| ApiError::invalid(param, format!("cannot read {}: {e}", path.display())))?
        .len();
    if len > max as u64 {
        return Err(ApiError::invalid(
            param,
            format!("{} is {len} bytes, over the limit of {max}", path.display()),
        ));
    }
    std::fs::read(path)
        .map_err(|e| ApiError::invalid(param, format!("cannot read {}: {e}", path.display())))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `input_audio.format` values: OpenAI's wav and mp3, and what phones and browsers record
/// (Ogg/Opus voice notes, WebM/Opus, M4A/MP4 with AAC). The content decides how it is read;
/// the format is only a hint.
const INPUT_AUDIO_FORMATS: &[&str] = &["wav", "mp3", "flac", "ogg", "opus", "webm", "m4a", "mp4"];

fn audio(a: &InputAudio, n: usize, param: &str) -> Result<AudioInput, ApiError> {
    let format = a.format.to_ascii_lowercase();
    if !INPUT_AUDIO_FORMATS.contains(&format.as_str()) {
        return Err(ApiError::invalid(
            format!("{param}.input_audio.format"),
            format!(
                "`{}` is not supported; use one of {}",
                a.format,
                INPUT_AUDIO_FORMATS.join(", ")
            ),
        ));
    }
    let data_param = format!("{param}.input_audio.data");
    let bytes = if a.data.starts_with("data:") {
        data_url(&a.data, &data_param)?
    } else {
        decode_base64(&a.data, &data_param)?
    };
    Ok(AudioInput {
        name: format!("audio {n}"),
        param: data_param,
        bytes,
        ext: Some(format),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("/a%20b/c%2"), "/a b/c%2");
    }

    #[test]
    fn dotdot_cannot_escape_allowed_dir() {
        let dir = tempfile::tempdir().unwrap();
        let inner = dir.path().join("in");
        std::fs::create_dir(&inner).unwrap();
        std::fs::write(dir.path().join("secret.png"), b"x").unwrap();
        let policy = MediaPolicy {
            allow_dirs: vec![inner.canonicalize().unwrap()],
            max_bytes: 1 << 20,
        };
        let escape = format!("{}/../secret.png", inner.display());
        let e = allowed_file(&escape, "p", &policy).unwrap_err();
        assert!(e.message.contains("outside"), "{}", e.message);
    }

    #[test]
    fn bad_base64_names_the_field() {
        let e = data_url(
            "data:image/png;base64,@@@",
            "messages[0].content[1].image_url.url",
        )
        .unwrap_err();
        assert!(e
            .message
            .starts_with("messages[0].content[1].image_url.url: bad base64"));
    }

    #[test]
    fn recorded_audio_formats_are_accepted_and_others_refused_with_the_list() {
        let input = |format: &str| InputAudio {
            data: "AAAA".into(),
            format: format.into(),
        };
        for f in ["wav", "mp3", "webm", "ogg", "opus", "m4a", "mp4", "WebM"] {
            let a = audio(&input(f), 1, "messages[0].content[0]").expect(f);
            assert_eq!(a.ext.as_deref(), Some(f.to_ascii_lowercase().as_str()));
        }
        let e = audio(&input("aiff"), 1, "messages[0].content[0]").unwrap_err();
        assert!(
            e.message.contains(
                "`aiff` is not supported; use one of wav, mp3, flac, ogg, opus, webm, m4a, mp4"
            ),
            "{}",
            e.message
        );
    }
}
