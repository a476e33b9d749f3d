//! The official `openai` Python client (tests/openai_client.py) against the real `percept serve`:
//! API key (a wrong one gets 401), models list, chat with an image, streamed chat, and a
//! transcription of assets/audio/jfk.wav.
//! Needs python3 with `openai` installed; fails (does not skip) when it is missing.

mod support;

use std::process::Command;
use support::{require_program, root, Server};

#[test]
fn the_openai_python_client_chats_streams_and_transcribes() {
    require_program(
        "python3",
        &["-c", "import openai"],
        "python3 with the `openai` package (python3 -m pip install openai)",
    );
    let server = Server::start(&["--queue", "4", "--api-key", "test-key"]);
    let out = Command::new("python3")
        .arg(root().join("tests/openai_client.py"))
        .arg(&server.url)
        .args(["--image", "assets/images/coffee.png"])
        .args(["--audio", "assets/audio/jfk.wav"])
        .args(["--max-tokens", "12"])
        .args(["--api-key", "test-key"])
        .current_dir(root())
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "openai_client.py failed:\n{}\n{}\nserver stderr:\n{}",
        stdout,
        String::from_utf8_lossy(&out.stderr),
        server.stderr()
    );
    let summary: serde_json::Value =
        serde_json::from_str(stdout.trim()).expect("one JSON summary line");
    let transcript = summary["transcript"].as_str().unwrap_or_default();
    assert!(transcript.to_lowercase().contains("country"), "{summary}");
    assert!(!summary["streamed"].as_str().unwrap_or_default().is_empty());
    assert_eq!(summary["wrong_key"], "refused with 401", "{summary}");
}
