//! `percept listen` end to end: speech made at test time (espeak-ng + sox) played through the
//! live path (front end, endpointer, Whisper stage, LLM stage), real weights.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const WHISPER: &str = "whisper-tiny.en";
const LLM: &str = "smollm2-135m-instruct";

fn need_models() {
    for id in [WHISPER, LLM] {
        if let Err(e) = percept_models::locate(id) {
            panic!("model {id} is missing ({e}); fetch it with `percept models fetch {id}`");
        }
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it ({e}); scripts/setup installs it"));
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Spoken sentences with `gap` seconds of silence around each, as one 22.05 kHz WAV (not
/// 16 kHz, so the live path's resampler is exercised too).
fn speech(dir: &Path, sentences: &[&str], gap: f64) -> PathBuf {
    let mut parts = Vec::new();
    let silence = dir.join("gap.wav");
    run(
        Command::new("sox")
            .args(["-n", "-r", "22050", "-c", "1", "-b", "16"])
            .arg(&silence)
            .args(["trim", "0", &gap.to_string()]),
        "sox",
    );
    parts.push(silence.clone());
    for (i, s) in sentences.iter().enumerate() {
        let raw = dir.join(format!("raw{i}.wav"));
        run(
            Command::new("espeak-ng").arg("-w").arg(&raw).arg(s),
            "espeak-ng",
        );
        let fixed = dir.join(format!("s{i}.wav"));
        run(
            Command::new("sox")
                .arg(&raw)
                .args(["-r", "22050", "-c", "1", "-b", "16"])
                .arg(&fixed),
            "sox",
        );
        parts.push(fixed);
        parts.push(silence.clone());
    }
    let out = dir.join("speech.wav");
    run(Command::new("sox").args(&parts).arg(&out), "sox");
    out
}

fn percept(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run percept")
}

fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "percept failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn two_utterances_get_two_answers_and_the_second_prompt_holds_the_first_turn() {
    need_models();
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), &["My name is Alice.", "What is my name?"], 1.2);
    let out = percept(&[
        "listen",
        "--input",
        wav.to_str().unwrap(),
        "--fast",
        "--json",
        "--max-tokens",
        "24",
    ]);
    let stdout = ok_stdout(&out);
    let turns: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per turn"))
        .collect();
    assert_eq!(turns.len(), 2, "{stdout}");
    let said = |i: usize| turns[i]["transcript"].as_str().unwrap().to_lowercase();
    assert!(said(0).contains("alice"), "{}", said(0));
    assert!(said(1).contains("name"), "{}", said(1));
    // Utterances come out in stream order, the second after the first ended.
    assert!(turns[1]["start_s"].as_f64().unwrap() > turns[0]["end_s"].as_f64().unwrap());
    assert_eq!(turns[0]["history_turns"], 0);
    // The second prompt carries the first exchange (user + assistant) ...
    assert_eq!(turns[1]["history_turns"], 2);
    // ... and the engine fed only the new turn: the first exchange came from its cache.
    assert!(turns[1]["reused_tokens"].as_u64().unwrap() > 0, "{stdout}");
    for t in &turns {
        assert!(!t["answer"].as_str().unwrap().trim().is_empty(), "{t}");
    }
}

#[test]
fn text_output_shows_the_transcript_then_the_answer_with_an_image_in_context() {
    need_models();
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), &["What is in the picture?"], 0.8);
    let out = percept(&[
        "listen",
        "--input",
        wav.to_str().unwrap(),
        "--fast",
        "--max-tokens",
        "16",
        "--image",
        "assets/images/horse.png",
    ]);
    let stdout = ok_stdout(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].to_lowercase().starts_with("you: what"), "{stdout}");
    let answer = lines[1].strip_prefix("percept: ").expect("an answer line");
    assert!(!answer.trim().is_empty(), "{stdout}");
}

#[test]
fn silence_gives_no_utterance() {
    need_models();
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("silence.wav");
    run(
        Command::new("sox")
            .args(["-n", "-r", "16000", "-c", "1", "-b", "16"])
            .arg(&wav)
            .args(["synth", "4", "whitenoise", "vol", "0.002"]),
        "sox",
    );
    let out = percept(&[
        "listen",
        "--input",
        wav.to_str().unwrap(),
        "--fast",
        "--json",
    ]);
    assert_eq!(ok_stdout(&out), "");
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 turn(s)"));
}

#[test]
fn ctrl_c_stops_a_live_session_cleanly() {
    need_models();
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), &["My name is Alice."], 5.0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args([
            "listen",
            "--input",
            wav.to_str().unwrap(),
            "--max-tokens",
            "8",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run percept");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        let n = err.read_line(&mut line).unwrap();
        assert!(n > 0, "percept exited before listening");
        if line.contains("listening to") {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    support::signal(child.id(), "-INT");
    let started = Instant::now();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut err, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {rest}");
    // Far less than the 7 s the file would take to play.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(rest.contains("turn(s)"), "{rest}");
}

#[test]
fn devices_lists_inputs_or_says_there_are_none() {
    let out = percept(&["devices"]);
    let stdout = ok_stdout(&out);
    assert!(
        stdout.contains("default input") || stdout.contains("no audio input devices"),
        "{stdout}"
    );
}

/// The real capture path: a private PulseAudio server with a pipe source, cpal's ALSA host.
#[test]
fn pulse_test_captures_through_a_virtual_microphone() {
    need_models();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/pulse-test");
    let out = Command::new(&script)
        .env("PERCEPT_BIN", env!("CARGO_BIN_EXE_percept"))
        .output()
        .expect("run scripts/pulse-test");
    assert!(
        out.status.success(),
        "scripts/pulse-test failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_unknown_device_is_named_in_the_error() {
    need_models();
    let out = percept(&["listen", "--device", "no-such-microphone"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-microphone"), "{err}");
}
