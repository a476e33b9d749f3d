//! End-to-end tests of `percept tag`, `percept embed` and `percept search` with the tiny
//! random-weight CLIP in tests/fixtures/clip/tiny (its tags are meaningless; the
//! plumbing, caching and index updates are real).

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tiny() -> PathBuf {
    root().join("tests/fixtures/clip/tiny")
}

fn image(name: &str) -> PathBuf {
    root().join("assets/images").join(name)
}

fn percept(args: &[&str], cache: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .env("PERCEPT_CACHE_DIR", cache)
        .output()
        .expect("run percept")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect()
}

#[test]
fn tag_json_gives_sorted_probabilities_and_caches_label_embeddings() {
    let cache = tempfile::tempdir().unwrap();
    let (cat, rocket, model) = (image("chelsea.png"), image("rocket.jpg"), tiny());
    let args = [
        "tag",
        s(&cat),
        s(&rocket),
        "--json",
        "--top",
        "4",
        "--clip-dir",
        s(&model),
    ];
    let first = percept(&args, cache.path());
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(stderr(&first).contains("computed"), "{}", stderr(&first));
    let out = json_lines(&first);
    assert_eq!(out.len(), 2);
    assert_eq!(out[0]["facts"]["width"], 451);
    assert_eq!(out[1]["facts"]["format"], "jpeg");
    for o in &out {
        let scores: Vec<f64> = o["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["score"].as_f64().unwrap())
            .collect();
        assert_eq!(scores.len(), 4);
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores.iter().all(|&p| p > 0.0 && p < 1.0));
    }
    let files: Vec<_> = std::fs::read_dir(cache.path().join("clip"))
        .unwrap()
        .collect();
    assert_eq!(files.len(), 1, "one label cache file");

    let second = percept(&args, cache.path());
    assert!(second.status.success());
    assert!(stderr(&second).contains("cache hit"), "{}", stderr(&second));
    assert_eq!(
        json_lines(&second),
        out,
        "same tags from the cached label embeddings"
    );
}

#[test]
fn tag_without_weights_prints_facts_and_one_line_hint() {
    let cache = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = percept(
        &[
            "tag",
            s(&image("coffee.png")),
            "--clip-dir",
            s(empty.path()),
        ],
        cache.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("percept models fetch clip-vit-base-patch32") && err.contains("--clip-dir")
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("600x400 png") && out.contains("colours:"),
        "{out}"
    );
    // The ImageNet classifier (default model set) still says what the photo shows.
    assert!(out.contains("imagenet: espresso"), "{out}");
}

#[test]
fn search_without_weights_fails_with_one_line() {
    let cache = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    let o = percept(
        &[
            "search",
            s(&root().join("assets/images")),
            "a cat",
            "--clip-dir",
            s(empty.path()),
        ],
        cache.path(),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("percept models fetch clip-vit-base-patch32"),
        "{err}"
    );
}

#[test]
fn hostile_files_get_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.jpg");
    std::fs::write(&text, "not an image").unwrap();
    let cut = dir.path().join("cut.png");
    let bytes = std::fs::read(image("coffee.png")).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let o = percept(
        &[
            "tag",
            s(&text),
            s(&cut),
            s(&image("horse.png")),
            "--clip-dir",
            s(&tiny()),
        ],
        cache.path(),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("notes.jpg: not a recognised image"), "{err}");
    assert!(err.contains("cut.png: corrupt or truncated png"), "{err}");
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("horse.png: 400x328"),
        "good files still print"
    );
}

#[test]
fn embed_writes_unit_vectors() {
    let cache = tempfile::tempdir().unwrap();
    let out = cache.path().join("e.jsonl");
    let o = percept(
        &[
            "embed",
            s(&image("astronaut.png")),
            s(&image("horse.png")),
            "--out",
            s(&out),
            "--clip-dir",
            s(&tiny()),
        ],
        cache.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    let e: Vec<f64> = lines[0]["embedding"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(e.len(), 16);
    assert!((e.iter().map(|v| v * v).sum::<f64>() - 1.0).abs() < 1e-4);
}

#[test]
fn search_index_updates_only_changed_files() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for f in ["chelsea.png", "coffee.png", "rocket.jpg"] {
        std::fs::copy(image(f), dir.path().join(f)).unwrap();
    }
    let model = tiny();
    let search = |extra: &[&str]| {
        let mut args = vec!["search", s(dir.path()), "--clip-dir", s(&model)];
        args.extend_from_slice(extra);
        percept(&args, cache.path())
    };
    let o = search(&["a cat", "--top", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("3 added, 0 changed, 0 removed, 0 unchanged"),
        "{}",
        stderr(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);

    let o = search(&["a cat"]);
    assert!(
        stderr(&o).contains("0 added, 0 changed, 0 removed, 3 unchanged"),
        "{}",
        stderr(&o)
    );

    std::fs::copy(image("horse.png"), dir.path().join("coffee.png")).unwrap();
    std::fs::remove_file(dir.path().join("rocket.jpg")).unwrap();
    std::fs::copy(image("astronaut.png"), dir.path().join("astronaut.png")).unwrap();
    let o = search(&["--image", s(&image("astronaut.png")), "--json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("1 added, 1 changed, 1 removed, 1 unchanged"),
        "{}",
        stderr(&o)
    );
    let hits = json_lines(&o);
    assert!(
        hits[0]["path"].as_str().unwrap().ends_with("astronaut.png"),
        "{hits:?}"
    );
    assert!((hits[0]["score"].as_f64().unwrap() - 1.0).abs() < 1e-4);
}
