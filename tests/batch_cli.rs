//! `percept batch` end to end: a mixed folder (four audio formats, images, corrupt files, a
//! folder named like a file, a symlink loop), resume, kill -9 and a question per file.

mod support;
use support::normalise;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn require_models(ids: &[&str]) {
    for id in ids {
        if let Err(e) = percept_models::locate(id) {
            panic!("model {id} is missing ({e}); run `percept models fetch {id}`");
        }
    }
}

fn percept(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run percept")
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(root().join(from), to).unwrap_or_else(|e| panic!("copy {from}: {e}"));
}

/// The mixed folder; returns the expected status ("ok"/"error") and kind per recorded path.
fn mixed_folder(top: &Path) -> BTreeMap<String, (&'static str, &'static str)> {
    let d = top.join("media");
    copy("assets/images/horse.png", &d.join("horse.png"));
    copy("assets/images/rocket.jpg", &d.join("pics/rocket.jpg"));
    copy("assets/audio/jfk.wav", &d.join("speech/jfk.wav"));
    copy("assets/audio/jfk.mp3", &d.join("speech/jfk.mp3"));
    copy("tests/fixtures/batch/jfk.ogg", &d.join("speech/jfk.ogg"));
    // A folder named like a file is walked; the FLAC inside has no extension at all.
    copy(
        "tests/fixtures/batch/jfk.flac",
        &d.join("x.wav/no_extension"),
    );
    let png = std::fs::read(root().join("assets/images/chelsea.png")).unwrap();
    std::fs::write(d.join("truncated.png"), &png[..png.len() / 3]).unwrap();
    std::fs::write(d.join("text.wav"), "this is text, not audio\n").unwrap();
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(d.join("random.bin"), noise).unwrap();
    std::os::unix::fs::symlink("..", d.join("pics/loop")).unwrap();
    // A second name for a file already in the tree: still one record.
    std::os::unix::fs::symlink("../horse.png", d.join("pics/alias.png")).unwrap();
    [
        ("media/horse.png", ("ok", "image")),
        ("media/pics/rocket.jpg", ("ok", "image")),
        ("media/speech/jfk.wav", ("ok", "audio")),
        ("media/speech/jfk.mp3", ("ok", "audio")),
        ("media/speech/jfk.ogg", ("ok", "audio")),
        ("media/x.wav/no_extension", ("ok", "audio")),
        ("media/truncated.png", ("error", "image")),
        ("media/text.wav", ("error", "other")),
        ("media/random.bin", ("error", "other")),
    ]
    .into_iter()
    .map(|(p, s)| (p.to_string(), s))
    .collect()
}

/// Every line must be a whole JSON record; returns them.
fn records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "torn last line");
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad line {l:?}: {e}")))
        .collect()
}

fn by_path(recs: &[Value]) -> BTreeMap<String, Value> {
    let mut m = BTreeMap::new();
    for r in recs {
        let p = r["path"].as_str().expect("path").to_string();
        assert!(
            m.insert(p.clone(), r.clone()).is_none(),
            "{p} recorded twice"
        );
    }
    m
}

fn check_mixed(recs: &[Value], expected: &BTreeMap<String, (&str, &str)>) {
    let got = by_path(recs);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (path, (status, kind)) in expected {
        let r = &got[path];
        assert_eq!(r["status"], *status, "{path}: {r}");
        assert_eq!(r["kind"], *kind, "{path}: {r}");
        assert!(
            r["size"].as_u64().is_some() && r["mtime"].as_f64().is_some(),
            "{r}"
        );
        if *status == "error" {
            assert!(!r["error"].as_str().unwrap_or("").is_empty(), "{r}");
            continue;
        }
        match *kind {
            "audio" => {
                let t = &r["results"]["transcript"];
                let text = normalise(t["text"].as_str().unwrap_or(""));
                assert!(
                    text.contains("ask not what your country can do for you"),
                    "{path}: {text}"
                );
                assert!(!t["segments"].as_array().expect("segments").is_empty());
                assert!(r["timings"]["speech"].as_f64().is_some(), "{r}");
            }
            _ => {
                assert!(
                    r["results"]["facts"]["width"].as_u64().unwrap_or(0) > 0,
                    "{r}"
                );
                assert!(r["results"]["tags"].is_array(), "{r}");
            }
        }
    }
    let err = |p: &str| got[p]["error"].as_str().unwrap_or("").to_string();
    assert!(err("media/text.wav").contains("not an image or audio file (detected: text)"));
    // A failed file keeps the timings of the stages it went through.
    let t = &got["media/truncated.png"]["timings"];
    assert!(t["decode"].as_f64().is_some(), "{t}");
    assert!(
        err("media/truncated.png").contains("truncated"),
        "{}",
        err("media/truncated.png")
    );
}

#[test]
fn a_mixed_folder_gets_one_record_per_file_and_a_rerun_appends_nothing() {
    require_models(&["whisper-tiny.en"]);
    let tmp = tempfile::tempdir().unwrap();
    let expected = mixed_folder(tmp.path());
    let out = percept(
        tmp.path(),
        &["batch", "media", "--out", "r.jsonl", "--keep-going"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("symlink loop"), "{stderr}");
    assert!(stderr.contains("6 ok, 3 error, 0 skipped"), "{stderr}");
    let first = std::fs::read(tmp.path().join("r.jsonl")).unwrap();
    check_mixed(&records(&tmp.path().join("r.jsonl")), &expected);

    let again = percept(
        tmp.path(),
        &["batch", "media", "--out", "r.jsonl", "--keep-going"],
    );
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    assert!(stderr.contains("0 ok, 0 error, 9 skipped"), "{stderr}");
    assert_eq!(std::fs::read(tmp.path().join("r.jsonl")).unwrap(), first);
}

#[test]
fn a_failure_without_keep_going_exits_non_zero_and_is_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("m");
    copy("assets/images/horse.png", &d.join("b.png"));
    std::fs::write(d.join("a.txt"), "plain text\n").unwrap();
    let out = percept(tmp.path(), &["batch", "m", "--out", "r.jsonl"]);
    assert!(!out.status.success());
    let recs = by_path(&records(&tmp.path().join("r.jsonl")));
    assert_eq!(recs["m/a.txt"]["status"], "error");
    // Errors are final on a rerun unless --retry-errors, which appends a newer record.
    let again = percept(tmp.path(), &["batch", "m", "--out", "r.jsonl"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let retried = percept(
        tmp.path(),
        &[
            "batch",
            "m",
            "--out",
            "r.jsonl",
            "--retry-errors",
            "--keep-going",
        ],
    );
    assert!(retried.status.success());
    let lines = records(&tmp.path().join("r.jsonl"));
    let paths: Vec<&str> = lines.iter().map(|r| r["path"].as_str().unwrap()).collect();
    // The first run stopped at a.txt; the second went on to b.png.
    assert_eq!(paths, ["m/a.txt", "m/b.png", "m/a.txt"]);
    // --exclude leaves the text file out, so the folder passes.
    let out = percept(
        tmp.path(),
        &["batch", "m", "--out", "s.jsonl", "--exclude", "*.txt"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = by_path(&records(&tmp.path().join("s.jsonl")));
    assert_eq!(recs.keys().collect::<Vec<_>>(), ["m/b.png"]);
}

/// What a kill inside a write would leave: half a record, no newline.
const TORN: &str = "{\"path\":\"media/speech/jfk.og";

#[test]
fn kill_9_mid_run_then_a_rerun_records_every_file_exactly_once() {
    require_models(&["whisper-tiny.en"]);
    let tmp = tempfile::tempdir().unwrap();
    let expected = mixed_folder(tmp.path());
    let out_file = tmp.path().join("r.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(["batch", "media", "--out", "r.jsonl", "--keep-going"])
        .current_dir(tmp.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn percept");
    // Wait for the first transcript: the other audio files are then still to come.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&out_file).unwrap_or_default();
        if text.contains("\"kind\":\"audio\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no audio record within 60 s");
        assert!(child.try_wait().unwrap().is_none(), "percept ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let before = records(&out_file).len();
    assert!(before < expected.len(), "the run finished before the kill");
    let mut bytes = std::fs::read(&out_file).unwrap();
    bytes.extend_from_slice(TORN.as_bytes());
    std::fs::write(&out_file, bytes).unwrap();

    let out = percept(
        tmp.path(),
        &["batch", "media", "--out", "r.jsonl", "--keep-going"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("cut {} bytes", TORN.len())),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{before} skipped")), "{stderr}");
    check_mixed(&records(&out_file), &expected);
}

#[test]
fn a_question_is_answered_for_each_file() {
    require_models(&["whisper-tiny.en", "smollm2-135m-instruct"]);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("q");
    copy("assets/images/horse.png", &d.join("horse.png"));
    copy("tests/fixtures/batch/jfk.ogg", &d.join("jfk.ogg"));
    let out = percept(
        tmp.path(),
        &[
            "batch",
            "q",
            "--out",
            "r.jsonl",
            "--question",
            "What is this about?",
            "--max-tokens",
            "4",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = by_path(&records(&tmp.path().join("r.jsonl")));
    assert_eq!(recs.len(), 2);
    for (p, r) in &recs {
        assert_eq!(r["status"], "ok", "{p}: {r}");
        let answer = r["results"]["answer"].as_str().unwrap_or("");
        assert!(!answer.trim().is_empty(), "{p}: {r}");
        assert!(r["timings"]["llm"].as_f64().is_some(), "{r}");
    }
}

/// F3: two names that differ only in bytes that are not UTF-8 read alike in `path`; with
/// the same size and mtime the second must still run, and each record maps to its file.
#[cfg(unix)]
#[test]
fn names_that_are_not_utf8_keep_their_exact_bytes_and_resume_apart() {
    use base64::Engine as _;
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("m");
    let name = |b: &[u8]| dir.join(std::ffi::OsStr::from_bytes(b));
    let (first, second) = (name(b"x\xff.wav"), name(b"x\xfe.wav"));
    copy("assets/audio/jfk.wav", &first);
    let out = percept(tmp.path(), &["batch", "m", "--out", "r.jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::copy(&first, &second).unwrap();
    let mtime = std::fs::metadata(&first).unwrap().modified().unwrap();
    std::fs::File::options()
        .write(true)
        .open(&second)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let out = percept(tmp.path(), &["batch", "m", "--out", "r.jsonl"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let recs = records(&tmp.path().join("r.jsonl"));
    assert_eq!(recs.len(), 2, "the second file ran: {recs:?}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut exact: Vec<Vec<u8>> = recs
        .iter()
        .map(|r| {
            b64.decode(r["path_b64"].as_str().expect("path_b64"))
                .unwrap()
        })
        .collect();
    exact.sort();
    assert_eq!(
        exact,
        vec![b"m/x\xfe.wav".to_vec(), b"m/x\xff.wav".to_vec()]
    );
    let again = percept(tmp.path(), &["batch", "m", "--out", "r.jsonl"]);
    assert!(again.status.success());
    assert_eq!(
        records(&tmp.path().join("r.jsonl")).len(),
        2,
        "a rerun adds nothing"
    );
}
