//! Issue F1 end to end: a 108-byte WAV that declares 4294967295 Hz once made `transcribe`
//! grow to 20 GB, aborted `serve`, and stopped `batch --keep-going` with no records. Each now
//! gives a clear error naming the file, and the other work goes on.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};
use support::{root, Server};

fn hostile_wav(path: &Path, rate: u32) {
    let payload = [0u8; 64];
    let mut b = Vec::new();
    b.extend_from_slice(b"RIFF");
    b.extend_from_slice(&(36 + payload.len() as u32).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt ");
    b.extend_from_slice(&16u32.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&rate.to_le_bytes());
    b.extend_from_slice(&rate.wrapping_mul(2).to_le_bytes());
    b.extend_from_slice(&2u16.to_le_bytes());
    b.extend_from_slice(&16u16.to_le_bytes());
    b.extend_from_slice(b"data");
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(&payload);
    assert_eq!(b.len(), 108);
    std::fs::write(path, b).expect("write wav");
}

fn percept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run percept")
}

#[test]
fn transcribe_refuses_absurd_rates_and_goes_on_with_the_next_file() {
    let dir = tempfile::tempdir().expect("tmp");
    for rate in [u32::MAX, 1] {
        let wav = dir.path().join(format!("w{rate}.wav"));
        hostile_wav(&wav, rate);
        let out = percept(&[
            "transcribe",
            wav.to_str().expect("utf8"),
            "assets/audio/jfk.wav",
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!("w{rate}.wav")) && err.contains("sample rate"),
            "{err}"
        );
        let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
        assert!(text.contains("ask not what your country"), "{text}");
    }
}

#[test]
fn max_audio_s_caps_the_decoded_duration() {
    let out = percept(&["transcribe", "--max-audio-s", "5", "assets/audio/jfk.wav"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("jfk.wav") && err.contains("longer than"),
        "{err}"
    );
}

#[test]
fn batch_keep_going_records_the_hostile_file_and_the_others() {
    let dir = tempfile::tempdir().expect("tmp");
    let media = dir.path().join("media");
    std::fs::create_dir(&media).expect("mkdir");
    hostile_wav(&media.join("a-hostile.wav"), u32::MAX);
    std::fs::copy(root().join("assets/audio/jfk.wav"), media.join("b-jfk.wav")).expect("copy");
    let report = dir.path().join("out.jsonl");
    let out = percept(&[
        "batch",
        media.to_str().expect("utf8"),
        "--out",
        report.to_str().expect("utf8"),
        "--keep-going",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("report");
    let recs: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    assert_eq!(recs.len(), 2, "{text}");
    let hostile = recs
        .iter()
        .find(|r| r["path"].as_str().unwrap_or("").ends_with("a-hostile.wav"));
    let hostile = hostile.expect("hostile record");
    assert_eq!(hostile["status"], "error");
    assert!(
        hostile["error"]
            .as_str()
            .unwrap_or("")
            .contains("sample rate"),
        "{hostile}"
    );
    assert!(recs.iter().any(|r| r["status"] == "ok"), "{text}");
}

#[test]
fn the_server_answers_400_and_stays_up() {
    let dir = tempfile::tempdir().expect("tmp");
    let wav = dir.path().join("w.wav");
    hostile_wav(&wav, u32::MAX);
    let mut server = Server::start(&[]);
    let data = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&wav).expect("wav"));
    let body = json!({"max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]}]});
    let c = reqwest::blocking::Client::new();
    let r = c
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&body)
        .send()
        .expect("chat");
    assert_eq!(r.status().as_u16(), 400);
    let v: Value = r.json().expect("error JSON");
    assert!(v.to_string().contains("sample rate"), "{v}");
    let form = reqwest::blocking::multipart::Form::new()
        .text("model", "whisper-1")
        .file("file", &wav)
        .expect("form");
    let r = c
        .post(format!("{}/v1/audio/transcriptions", server.url))
        .multipart(form)
        .send()
        .expect("transcription");
    assert_eq!(r.status().as_u16(), 400);
    assert!(server.alive(), "{}", server.stderr());
    assert_eq!(server.get_status("/health"), Some(200));
}
