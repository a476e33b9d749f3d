//! The web page in headless Chromium against the real `percept serve`: the browser's fake
//! microphone plays a 48 kHz copy of jfk.wav, the page records it with MediaRecorder, turns it
//! into 16 kHz WAV itself, sends it with an image, and streams the answer in.
//! Driven by tests/browser/drive.py over the DevTools pipe; the page's body[data-state] says
//! when it is done. Needs chromium, python3 and sox; fails (does not skip) when one is missing.
//! Leaves a screenshot at target/browser-screenshot.png.

mod server_support;

use server_support::{require_program, root, Server};
use std::path::PathBuf;
use std::process::Command;

fn target_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target dir above CARGO_TARGET_TMPDIR")
        .to_path_buf()
}

#[test]
fn the_page_records_the_microphone_and_streams_the_answer() {
    require_program("python3", &["--version"], "apt-get install -y python3");
    require_program("sox", &["--version"], "apt-get install -y sox");
    let chromium = std::env::var("PERCEPT_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    require_program(&chromium, &["--version"], "apt-get install -y chromium");

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
    let out = Command::new("python3")
        .arg(root().join("tests/browser/drive.py"))
        .args(["--url", &format!("{}/", server.url)])
        .arg("--audio")
        .arg(&speech)
        // "…ask not what your country can do for you" ends 7.7 s into the file.
        .args(["--record-ms", "8500"])
        .args(["--image", "assets/images/coffee.png"])
        .args(["--max-tokens", "24"])
        .args(["--timeout", "90"])
        .arg("--screenshot")
        .arg(&shot)
        .current_dir(root())
        .env("PERCEPT_CHROMIUM", &chromium)
        .output()
        .expect("run drive.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "drive.py failed:\n{stdout}\n{}\nserver stderr:\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    let shown: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    let field = |k: &str| shown[k].as_str().unwrap_or_default().to_string();
    assert_eq!(field("state"), "done", "the page did not finish: {shown}");
    assert!(
        field("transcript").to_lowercase().contains("country"),
        "the page's transcript lacks 'country': {shown}"
    );
    assert!(
        !field("answer").trim().is_empty(),
        "no answer shown: {shown}"
    );
    assert!(
        shown["facts"].as_array().is_some_and(|f| !f.is_empty()),
        "no image facts shown: {shown}"
    );
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}
