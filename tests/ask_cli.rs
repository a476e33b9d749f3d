//! `percept ask` end to end: real media, real weights, the three stages through core's runner.

use std::process::{Command, Output};

fn percept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run percept")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "percept failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn normalise(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn a_spoken_question_is_transcribed_and_answered() {
    let out = percept(&[
        "ask",
        "--audio",
        "assets/audio/jfk.wav",
        "--max-tokens",
        "24",
        "--json",
    ]);
    let v = json(&out);
    let transcript = normalise(v["transcript"]["text"].as_str().expect("transcript"));
    assert!(
        transcript.contains("ask not what your country can do for you"),
        "{transcript}"
    );
    assert!(!v["answer"].as_str().expect("answer").trim().is_empty());
    let stages = v["stages"].as_array().expect("stages");
    let items = |name: &str| {
        stages
            .iter()
            .find(|s| s["stage"] == name)
            .map(|s| s["items"].as_u64().unwrap_or(0))
    };
    assert_eq!(items("speech"), Some(1));
    assert_eq!(items("llm"), Some(1));
}

#[test]
fn an_image_without_clip_uses_facts_and_says_so_once() {
    let empty = tempfile::tempdir().expect("tmp");
    let clip_dir = empty.path().to_str().expect("utf8");
    let out = percept(&[
        "ask",
        "--image",
        "assets/images/chelsea.png",
        "--clip-dir",
        clip_dir,
        "--max-tokens",
        "16",
        "--json",
        "What is in the picture?",
    ]);
    let v = json(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let notes: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("semantic tags unavailable"))
        .collect();
    assert_eq!(notes.len(), 1, "{stderr}");
    assert!(
        notes[0].contains("percept models fetch clip-vit-base-patch32"),
        "{stderr}"
    );
    let image = &v["images"][0];
    assert_eq!(image["facts"]["width"], 451);
    assert_eq!(image["facts"]["height"], 300);
    assert!(!v["answer"].as_str().expect("answer").is_empty());
}

#[test]
fn a_bad_image_is_reported_and_the_others_still_answered() {
    let dir = tempfile::tempdir().expect("tmp");
    let fake = dir.path().join("notes.png");
    std::fs::write(&fake, "this is text, not a picture").expect("write");
    let out = percept(&[
        "ask",
        "--image",
        fake.to_str().expect("utf8"),
        "--image",
        "assets/images/coffee.png",
        "--clip-dir",
        dir.path().to_str().expect("utf8"),
        "--max-tokens",
        "8",
        "--json",
        "Describe these.",
    ]);
    let v = json(&out);
    let errors = v["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].as_str().expect("str").contains("notes.png"),
        "{errors:?}"
    );
    assert_eq!(v["images"].as_array().expect("images").len(), 1);
    assert_eq!(v["images"][0]["facts"]["width"], 600);
}

#[test]
fn no_question_at_all_is_a_clear_error() {
    let out = percept(&["ask", "--image", "assets/images/coffee.png"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("give a question"));
}

#[test]
fn a_named_pipeline_picks_its_models() {
    let out = percept(&["ask", "--pipeline", "nope", "hi"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown pipeline `nope`"));
}

#[test]
fn ctrl_c_stops_the_answer_and_exits_cleanly() {
    use std::time::{Duration, Instant};
    let child = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "ask",
            "--image",
            "assets/images/coffee.png",
            "--max-tokens",
            "6000",
            "--json",
        ])
        .arg("Count from 1 to 5000, one number per line, and nothing else.")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(Duration::from_secs(5));
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let start = Instant::now();
    let out = child.wait_with_output().expect("wait");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "did not stop promptly"
    );
    let v = json(&out);
    assert_eq!(v["finish"], "cancelled", "{v}");
    assert!(v["completion_tokens"].as_u64().unwrap_or(0) < 6000);
}
