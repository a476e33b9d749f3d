//! End-to-end tests of `percept transcribe` (needs the whisper-tiny.en model in the store).

mod support;
use support::normalise;

use std::path::PathBuf;
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn percept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .output()
        .expect("run percept")
}

const JFK: &str = "and so my fellow americans ask not what your country can do for you ask what you can do for your country";

fn jfk() -> String {
    root().join("assets/audio/jfk.wav").display().to_string()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "percept failed (is whisper-tiny.en in the model store?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn transcribe_txt_and_json() {
    let txt = ok(&percept(&["transcribe", &jfk()]));
    assert_eq!(normalise(&txt), JFK);
    let json = ok(&percept(&["transcribe", "--format", "json", &jfk()]));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["language"], "en");
    let segs = v["segments"].as_array().unwrap();
    assert!(!segs.is_empty());
    for key in ["start", "end", "text", "avg_logprob", "no_speech_prob"] {
        assert!(!segs[0][key].is_null(), "segment lacks {key}: {json}");
    }
}

#[test]
fn srt_and_vtt_go_to_out_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for fmt in ["srt", "vtt"] {
        ok(&percept(&[
            "transcribe",
            "--format",
            fmt,
            "--out-dir",
            &d,
            &jfk(),
        ]));
        let body = std::fs::read_to_string(dir.path().join(format!("jfk.{fmt}"))).unwrap();
        assert!(body.contains("-->"), "{body}");
        if fmt == "vtt" {
            assert!(body.starts_with("WEBVTT"));
        } else {
            assert!(body.starts_with("1\n00:00:00,000 --> "), "{body}");
        }
    }
}

#[test]
fn one_bad_file_fails_at_the_end_and_others_are_transcribed() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("notes.wav");
    std::fs::write(&bad, "this is a text file, not audio\n").unwrap();
    let bad = bad.display().to_string();
    let out = percept(&["transcribe", &bad, &jfk()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notes.wav"), "{stderr}");
    assert_eq!(normalise(&String::from_utf8_lossy(&out.stdout)), JFK);
}

#[test]
fn missing_model_is_a_clear_error() {
    let out = percept(&["transcribe", "--model", "/nonexistent/whisper-dir", &jfk()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("whisper-dir"));
}

#[test]
fn short_window_transcribes_jfk_the_same() {
    let out = ok(&percept(&[
        "transcribe",
        &jfk(),
        "--short-window",
        "--format",
        "json",
    ]));
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(normalise(v["text"].as_str().unwrap_or_default()), JFK);
    let last_end = v["segments"]
        .as_array()
        .and_then(|s| s.last())
        .and_then(|s| s["end"].as_f64())
        .unwrap_or(0.0);
    assert!(last_end <= 13.0, "segment past the audio: {last_end}");
}
