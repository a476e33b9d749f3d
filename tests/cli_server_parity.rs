//! The CLI and the server run one pipeline: the same spoken question about the same image
//! gives the same transcript, image description and answer through `percept ask` and
//! through `percept serve`.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::process::Command;
use support::{root, speak, Server};

#[test]
fn ask_and_serve_give_the_same_transcript_tags_and_answer() {
    let dir = tempfile::tempdir().expect("tmp");
    let wav = dir.path().join("question.wav");
    speak("What colours are in this picture?", &wav);
    let image = root().join("assets/images/coffee.png");

    let out = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(["ask", "--audio"])
        .arg(&wav)
        .arg("--image")
        .arg(&image)
        .args(["--no-probe", "--max-tokens", "40", "--json"])
        .current_dir(root())
        .output()
        .expect("run percept ask");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Value = serde_json::from_slice(&out.stdout).expect("ask --json");

    let images = root().join("assets/images");
    let server = Server::spawn(&["--allow-dir", images.to_str().expect("utf8")]);
    let audio = base64::engine::general_purpose::STANDARD.encode(std::fs::read(&wav).expect("wav"));
    let body = json!({
        "max_tokens": 40,
        "messages": [{"role": "user", "content": [
            {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
            {"type": "image_url", "image_url": {"url": format!("file://{}", image.display())}},
        ]}],
    });
    let r = reqwest::blocking::Client::new()
        .post(format!("{}/v1/chat/completions", server.url))
        .json(&body)
        .send()
        .expect("chat request");
    assert_eq!(r.status().as_u16(), 200);
    let srv: Value = r.json().expect("chat JSON");

    assert_eq!(
        cli["transcript"]["text"].as_str().map(str::trim),
        srv["percept"]["transcript"].as_str(),
        "transcripts"
    );
    let (a, b) = (&cli["images"][0], &srv["percept"]["images"][0]);
    assert_eq!(a["tags"], b["tags"], "tags");
    assert_eq!(a["labels"], b["labels"], "ImageNet labels");
    assert!(a["labels"].as_array().is_some_and(|l| !l.is_empty()), "{a}");
    assert_eq!(a["facts"], b["facts"], "facts");
    let answer = cli["answer"].as_str().expect("cli answer");
    assert!(!answer.trim().is_empty());
    assert_eq!(
        Some(answer),
        srv["choices"][0]["message"]["content"].as_str(),
        "answers"
    );
}
