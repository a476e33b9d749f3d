//! Issue 15, the video part: an MP4 (H.264 + AAC) and an MKV (VP9 + Opus) made at test time
//! with Debian's `ffmpeg` from espeak-ng speech and two bundled pictures as scenes (a cat,
//! then an espresso), and a truncated MP4. Nothing here is committed media.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use support::{encode, normalise, percept_in, require_models, speak, stdout_ok, wer, WHISPER};

/// About 45 words over two scenes.
const SPEECH: &str = "Welcome to this short film about a quiet morning at home. First you can see \
our cat resting on the sofa near the window. Later we show the small cup of coffee that we make \
every day before work. Thank you for watching and have a pleasant day.";

fn s(p: &Path) -> &str {
    p.to_str().expect("utf8 path")
}

/// Seconds of a 16-bit mono WAV as espeak-ng writes it.
fn wav_seconds(wav: &Path) -> f64 {
    let bytes = std::fs::read(wav).expect("wav");
    let rate = u32::from_le_bytes(bytes[24..28].try_into().unwrap());
    (bytes.len() - 44) as f64 / (2.0 * f64::from(rate))
}

/// `wav` with the cat for the first half and the espresso for the second, in `codecs`.
fn scenes(wav: &Path, out: &Path, codecs: &[&str]) {
    let images = support::root().join("assets/images");
    let half = format!("{:.2}", wav_seconds(wav) / 2.0 + 0.1);
    let (cat, coffee) = (images.join("chelsea.png"), images.join("coffee.png"));
    let mut args = vec![
        "-nostdin",
        "-loglevel",
        "error",
        "-y",
        "-loop",
        "1",
        "-t",
        &half,
        "-i",
        s(&cat),
        "-loop",
        "1",
        "-t",
        &half,
        "-i",
        s(&coffee),
        "-i",
        s(wav),
        "-filter_complex",
        "[0:v]scale=480:360,setsar=1,fps=25[a];[1:v]scale=480:360,setsar=1,fps=25[b];\
         [a][b]concat=n=2:v=1:a=0,format=yuv420p[v]",
        "-map",
        "[v]",
        "-map",
        "2:a",
        "-ar",
        "48000",
        "-ac",
        "2",
    ];
    args.extend_from_slice(codecs);
    args.push(s(out));
    encode("ffmpeg", &args);
}

const MP4: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"];
const MKV: &[&str] = &[
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
    "-b:v",
    "300k",
    "-c:a",
    "libopus",
];

/// The speech as a WAV, the MP4 and the MKV made from it, and an AVI: made once per run of
/// this file (VP9 and H.264 encoding is most of its time) and only read by its tests, each
/// of which works in a folder of its own.
struct Fixtures {
    wav: PathBuf,
    videos: Vec<PathBuf>,
    avi: PathBuf,
}

fn fixtures() -> &'static Fixtures {
    static MADE: std::sync::OnceLock<Fixtures> = std::sync::OnceLock::new();
    MADE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("video-fixtures");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let wav = dir.join("speech.wav");
        speak(SPEECH, &wav);
        let mp4 = dir.join("scenes.mp4");
        scenes(&wav, &mp4, MP4);
        let mkv = dir.join("scenes.mkv");
        scenes(&wav, &mkv, MKV);
        let avi = dir.join("scenes.avi");
        scenes(&wav, &avi, AVI);
        Fixtures {
            wav,
            videos: vec![mp4, mkv],
            avi,
        }
    })
}

fn labels(frame: &Value) -> String {
    frame["labels"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(frame["tags"].as_array().into_iter().flatten())
        .filter_map(|t| t["label"].as_str())
        .collect::<Vec<_>>()
        .join(", ")
        .to_lowercase()
}

#[test]
fn ask_about_a_video_hears_its_speech_and_sees_both_scenes_with_their_times() {
    require_models();
    let tmp = tempfile::tempdir().expect("tmp");
    let (wav, files) = (&fixtures().wav, &fixtures().videos);
    let out = percept_in(
        tmp.path(),
        &[
            "transcribe",
            "--model",
            WHISPER,
            "--out-dir",
            s(tmp.path()),
            s(wav),
        ],
    );
    stdout_ok(&out);
    let heard = std::fs::read_to_string(tmp.path().join("speech.txt")).expect("transcript");
    let wav_wer = wer(SPEECH, &heard);
    eprintln!("wav: WER {wav_wer:.1}%");
    assert!(wav_wer < 20.0, "the WAV itself transcribes badly: {heard}");
    for file in files {
        let out = percept_in(
            tmp.path(),
            &[
                "ask",
                "--whisper",
                WHISPER,
                "--video",
                s(file),
                "--max-tokens",
                "8",
                "--json",
                "What is in this video?",
            ],
        );
        let v: Value = serde_json::from_str(stdout_ok(&out).trim()).expect("json");
        let video = &v["video"];
        let text = video["transcript"]["text"].as_str().expect("a transcript");
        let w = wer(SPEECH, text);
        eprintln!("{}: WER {w:.1}%: {}", file.display(), normalise(text));
        assert!(w <= wav_wer + 2.0, "{w:.1}% vs the WAV's {wav_wer:.1}%");
        let segments = video["transcript"]["segments"]
            .as_array()
            .expect("segments");
        assert!(segments.len() > 1 && segments[1]["start"].as_f64() > Some(0.0));
        let frames = video["frames"].as_array().expect("frames");
        let at = |words: &[&str]| {
            frames
                .iter()
                .find(|f| words.iter().any(|w| labels(f).contains(w)))
                .and_then(|f| f["time_s"].as_f64())
        };
        let cat = at(&["cat", "tabby"]).unwrap_or_else(|| panic!("no cat: {frames:?}"));
        let cup = at(&["espresso", "cup"]).unwrap_or_else(|| panic!("no coffee: {frames:?}"));
        eprintln!("cat at {cat} s, espresso at {cup} s");
        assert!(cat < cup, "{frames:?}");
        assert!(frames.len() <= 16);
        let parts: Vec<&str> = v["data_parts"]
            .as_array()
            .expect("data parts")
            .iter()
            .filter_map(|p| p.as_str())
            .collect();
        assert!(parts.contains(&"transcript of the video"), "{parts:?}");
        assert!(parts.contains(&"frame at 0.0 s"), "{parts:?}");
        assert!(parts.iter().all(|p| !p.contains("scenes")), "{parts:?}");
        assert_eq!(v["user_turn"], "What is in this video?");
    }
    // A truncated file: a clear error naming it, no panic.
    let bytes = std::fs::read(&files[0]).expect("mp4");
    let cut = tmp.path().join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let out = percept_in(tmp.path(), &["ask", "--video", s(&cut), "what is this?"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cut.mp4") && err.contains("not a readable video"),
        "{err}"
    );
}

#[test]
fn batch_records_each_video_once_with_frames_and_the_truncated_one_as_a_clear_error() {
    require_models();
    let tmp = tempfile::tempdir().expect("tmp");
    let (wav, files) = (&fixtures().wav, &fixtures().videos);
    let media = tmp.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    for f in files {
        std::fs::copy(f, media.join(f.file_name().expect("name"))).expect("copy");
    }
    std::fs::copy(wav, media.join("speech.wav")).expect("copy");
    let bytes = std::fs::read(&files[0]).expect("mp4");
    std::fs::write(media.join("cut.mp4"), &bytes[..bytes.len() / 2]).expect("write");
    let out = percept_in(
        tmp.path(),
        &[
            "batch",
            "media",
            "--out",
            "r.jsonl",
            "--keep-going",
            "--whisper",
            WHISPER,
            "--question",
            "What is shown?",
            "--max-tokens",
            "8",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let recs = support::batch_records(&tmp.path().join("r.jsonl"));
    let paths: Vec<&str> = recs.keys().map(String::as_str).collect();
    assert_eq!(
        paths,
        [
            "media/cut.mp4",
            "media/scenes.mkv",
            "media/scenes.mp4",
            "media/speech.wav"
        ],
        "{stderr}"
    );
    let cut = &recs["media/cut.mp4"];
    assert_eq!(cut["status"], "error", "{cut}");
    let e = cut["error"].as_str().unwrap_or("");
    assert!(
        e.contains("cut.mp4") && e.contains("not a readable video"),
        "{e}"
    );
    assert_eq!(recs["media/speech.wav"]["kind"], "audio");
    for name in ["media/scenes.mkv", "media/scenes.mp4"] {
        let r = &recs[name];
        assert_eq!(
            (&r["kind"], &r["status"]),
            (&"video".into(), &"ok".into()),
            "{r}"
        );
        let res = &r["results"];
        let d = res["duration_s"].as_f64().expect("duration");
        assert!(d > 10.0, "{d}");
        let heard = res["transcript"]["text"].as_str().expect("transcript");
        assert!(wer(SPEECH, heard) < 30.0, "{name}: {heard}");
        let frames = res["frames"].as_array().expect("frames");
        let at = |words: &[&str]| {
            frames
                .iter()
                .find(|f| words.iter().any(|w| labels(f).contains(w)))
                .and_then(|f| f["time_s"].as_f64())
        };
        let (cat, cup) = (at(&["cat", "tabby"]), at(&["espresso", "cup"]));
        assert!(
            cat.is_some() && cup.is_some() && cat < cup,
            "{name}: {frames:?}"
        );
        assert!(res["answer"].as_str().is_some_and(|a| !a.is_empty()), "{r}");
    }
    assert!(out.status.success(), "{stderr}");
}

/// MPEG-4 Part 2 video with MP3 audio in AVI: a container the audio decoders do not read.
const AVI: &[&str] = &["-c:v", "mpeg4", "-c:a", "libmp3lame"];

#[test]
fn the_server_transcribes_the_audio_track_of_a_video_upload() {
    let mut files = fixtures().videos.clone();
    files.push(fixtures().avi.clone());
    let server = support::Server::start(&[]);
    let client = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(300))
        .build()
        .expect("client");
    for path in &files {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let bytes = std::fs::read(path).expect("read");
        let (status, text) =
            support::upload_transcription(&client, &server.url, bytes, name.clone());
        assert_eq!(status, 200, "{name}: {text}");
        let w = wer(SPEECH, &text);
        eprintln!("server, {name}: WER {w:.1}%");
        assert!(w < 30.0, "{name}: {text}");
    }
    // Chat: the MP4 as a data:video URL, the MKV as a `file` part; frames and transcript.
    let b64 = |p: &Path| {
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(p).expect("read"))
    };
    let parts = [
        json!({"type": "image_url", "image_url": {"url": format!("data:video/mp4;base64,{}", b64(&files[0]))}}),
        json!({"type": "file", "file": {"file_data": b64(&files[1]), "filename": "scenes.mkv"}}),
    ];
    for part in parts {
        let body = json!({"messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is in this video?"}, part]}], "max_tokens": 1});
        let (status, v) = support::post_chat(&client, &server.url, &body);
        assert_eq!(status, 200, "{v}");
        let heard = v["percept"]["transcript"].as_str().expect("transcript");
        assert!(wer(SPEECH, heard) < 30.0, "{heard}");
        let frames = v["percept"]["images"].as_array().expect("frames");
        let at = |words: &[&str]| {
            frames
                .iter()
                .find(|f| words.iter().any(|w| labels(f).contains(w)))
                .and_then(|f| f["source"].as_str())
                .and_then(|s| {
                    s.trim_start_matches("frame at ")
                        .trim_end_matches(" s")
                        .parse::<f64>()
                        .ok()
                })
        };
        let (cat, cup) = (at(&["cat", "tabby"]), at(&["espresso", "cup"]));
        assert!(cat.is_some() && cup.is_some() && cat < cup, "{frames:?}");
    }
    // Without a typed question the video's words are not taken as one.
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": format!("data:video/mp4;base64,{}", b64(&files[0]))}}]}]});
    let (status, v) = support::post_chat(&client, &server.url, &body);
    assert_eq!(status, 400, "{v}");
}

/// `transcribe` and `listen --input` read the audio track of a video the audio decoders do
/// not read (AVI), and a video over `--max-video-s` is refused before any frame is used.
#[test]
fn transcribe_and_listen_hear_an_avi_and_max_video_s_caps_ask() {
    require_models();
    let tmp = tempfile::tempdir().expect("tmp");
    let avi = &fixtures().avi;
    let out = percept_in(tmp.path(), &["transcribe", "--model", WHISPER, s(avi)]);
    let heard = stdout_ok(&out);
    let w = wer(SPEECH, &heard);
    eprintln!("transcribe, avi: WER {w:.1}%");
    assert!(w < 30.0, "{heard}");

    let out = percept_in(
        tmp.path(),
        &[
            "listen",
            "--input",
            s(avi),
            "--fast",
            "--json",
            "--max-tokens",
            "1",
        ],
    );
    let said: String = stdout_ok(&out)
        .lines()
        .map(|l| {
            let turn: Value = serde_json::from_str(l).expect("one JSON object per turn");
            turn["transcript"].as_str().unwrap_or_default().to_string()
        })
        .collect::<Vec<_>>()
        .join(" ");
    let w = wer(SPEECH, &said);
    eprintln!("listen --input, avi: WER {w:.1}%");
    assert!(w < 40.0, "{said}");

    let out = percept_in(
        tmp.path(),
        &[
            "ask",
            "--video",
            s(avi),
            "--max-video-s",
            "3",
            "--max-tokens",
            "1",
            "What happens?",
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("scenes.avi") && err.contains("3 s limit"),
        "{err}"
    );
}
