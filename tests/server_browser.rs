//! The web page in headless Chromium against the real `percept serve`: the browser's fake
//! microphone plays a 48 kHz copy of jfk.wav, the page records it with MediaRecorder, sends the
//! recording as the browser made it (WebM/Opus in Chromium; WAV only as a fallback) with an
//! image, and streams the answer in.
//! Driven by tests/browser/drive.py over the DevTools pipe; the page's body[data-state] says
//! when it is done. Needs chromium, python3 and sox; fails (does not skip) when one is missing.
//! Leaves a screenshot at target/browser-screenshot.png. A second test types a question into a
//! page served behind --api-key: refused with a clear message first, answered once the key is set.

mod support;

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;
use support::{require_program, root, Server};

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir above CARGO_TARGET_TMPDIR")
        .to_path_buf()
}

fn chromium() -> String {
    require_program("python3", &["--version"], "apt-get install -y python3");
    let chromium = std::env::var("PERCEPT_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    require_program(&chromium, &["--version"], "apt-get install -y chromium");
    chromium
}

/// Runs tests/browser/drive.py against `server` and returns what the page showed.
fn drive(server: &Server, args: &[&OsStr]) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(root().join("tests/browser/drive.py"))
        .args(["--url", &format!("{}/", server.url)])
        .args(["--timeout", "90"])
        .args(args)
        .current_dir(root())
        .env("PERCEPT_CHROMIUM", chromium())
        .output()
        .expect("run drive.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drive.py failed:\n{stdout}\n{}\nserver stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    serde_json::from_str(stdout.trim()).expect("one JSON line")
}

fn field(shown: &serde_json::Value, k: &str) -> String {
    shown[k].as_str().unwrap_or_default().to_string()
}

#[test]
fn the_page_records_the_microphone_and_streams_the_answer() {
    chromium();
    require_program("sox", &["--version"], "apt-get install -y sox");

    // Chromium's fake capture device plays the file at the capture rate; give it that rate.
    let tmp = tempfile::tempdir().expect("tempdir");
    let speech = tmp.path().join("jfk-48k.wav");
    let sox = Command::new("sox")
        .arg(root().join("assets/audio/jfk.wav"))
        .args(["-r", "48000"])
        .arg(&speech)
        .status()
        .expect("run sox");
    assert!(sox.success(), "sox could not resample jfk.wav");

    let server = Server::start(&["--queue", "2"]);
    let shot = target_dir().join("browser-screenshot.png");
    let shown = drive(
        &server,
        &[
            "--audio".as_ref(),
            speech.as_os_str(),
            // "…ask not what your country can do for you" ends 7.7 s into the file.
            "--record-ms".as_ref(),
            "8500".as_ref(),
            "--image".as_ref(),
            "assets/images/coffee.png".as_ref(),
            "--max-tokens".as_ref(),
            "24".as_ref(),
            "--screenshot".as_ref(),
            shot.as_os_str(),
        ],
    );
    assert_eq!(
        field(&shown, "state"),
        "done",
        "the page did not finish: {shown}"
    );
    assert_eq!(
        field(&shown, "audio_format"),
        "webm",
        "the browser's own recording is sent: {shown}"
    );
    assert!(
        field(&shown, "transcript")
            .to_lowercase()
            .contains("country"),
        "the page's transcript lacks 'country': {shown}"
    );
    assert!(
        !field(&shown, "answer").trim().is_empty(),
        "no answer shown: {shown}"
    );
    assert!(
        shown["facts"].as_array().is_some_and(|f| !f.is_empty()),
        "no image facts shown: {shown}"
    );
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}

#[test]
fn a_typed_question_behind_an_api_key_is_refused_then_answered() {
    chromium();
    let server = Server::start(&["--api-key", "page-key"]);
    let typed: [&OsStr; 4] = [
        "--question".as_ref(),
        "Say hello.".as_ref(),
        "--max-tokens".as_ref(),
        "6".as_ref(),
    ];
    let refused = drive(&server, &typed);
    assert_eq!(field(&refused, "state"), "error", "{refused}");
    assert!(field(&refused, "error").contains("API key"), "{refused}");

    let with_key = [&typed[..], &["--api-key".as_ref(), "page-key".as_ref()]].concat();
    let answered = drive(&server, &with_key);
    assert_eq!(field(&answered, "state"), "done", "{answered}");
    assert!(!field(&answered, "answer").trim().is_empty(), "{answered}");
    assert_eq!(
        field(&answered, "transcript"),
        "—",
        "no audio was sent: {answered}"
    );
}
