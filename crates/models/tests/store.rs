//! Model store against real pip, offline: wheels come from a local folder
//! (`--no-index --find-links`), built by the test itself.

use percept_models::{Manifest, Store, StoreError};
use sha2::{Digest, Sha256};

use percept_models::testing::write_wheel;

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

struct Fixture {
    _tmp: tempfile::TempDir,
    store: Store,
    part1: Vec<u8>,
    part2: Vec<u8>,
}

fn fixture(model_sha: Option<&str>) -> Fixture {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheels = tmp.path().join("wheels");
    std::fs::create_dir(&wheels).expect("mkdir");
    let part1: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let part2: Vec<u8> = (0..30_000u32).map(|i| (i % 13) as u8).collect();
    write_wheel(
        &wheels,
        "tiny-model-a",
        "1.0.0",
        &[
            ("tiny_model_a/data/w.part1", &part1),
            ("tiny_model_a/data/cfg.json", b"{}"),
        ],
    )
    .expect("wheel a");
    write_wheel(
        &wheels,
        "tiny-model-b",
        "1.0.0",
        &[("tiny_model_b/data/w.part2", &part2)],
    )
    .expect("wheel b");
    let joined: Vec<u8> = part1.iter().chain(&part2).copied().collect();
    let model_sha = model_sha
        .map(str::to_string)
        .unwrap_or_else(|| sha(&joined));
    let manifest = format!(
        r#"
[[model]]
id = "tiny"
kind = "whisper"
format = "ctranslate2"
default = true
files = [
  {{ name = "model.bin", size = {size}, sha256 = "{model_sha}", parts = [
    {{ wheel = "tiny-model-a==1.0.0", path = "tiny_model_a/data/w.part1" }},
    {{ wheel = "tiny-model-b==1.0.0", path = "tiny_model_b/data/w.part2" }},
  ] }},
  {{ name = "config.json", size = 2, sha256 = "{cfg_sha}", parts = [{{ wheel = "tiny-model-a==1.0.0", path = "tiny_model_a/data/cfg.json" }}] }},
]
"#,
        size = joined.len(),
        cfg_sha = sha(b"{}"),
    );
    let store = Store {
        manifest: Manifest::parse(&manifest).expect("manifest"),
        home: tmp.path().join("home"),
        model_dirs: Vec::new(),
        pip_args: vec![
            "--no-index".into(),
            "--find-links".into(),
            wheels.display().to_string(),
        ],
        python: "python3".into(),
    };
    Fixture {
        _tmp: tmp,
        store,
        part1,
        part2,
    }
}

#[test]
fn fetch_joins_parts_from_two_wheels_into_an_empty_cache() {
    let f = fixture(None);
    assert!(matches!(
        f.store.find("tiny"),
        Err(StoreError::Missing { .. })
    ));
    let mut events = 0;
    let dir = f.store.fetch("tiny", &mut |_| events += 1).expect("fetch");
    assert!(events > 0, "progress was reported");
    let model = std::fs::read(dir.join("model.bin")).expect("model.bin");
    assert_eq!(model.len(), f.part1.len() + f.part2.len());
    assert_eq!(&model[..f.part1.len()], &f.part1[..]);
    assert_eq!(&model[f.part1.len()..], &f.part2[..]);
    assert_eq!(f.store.find("tiny").expect("present"), dir);
    assert!(f.store.verify("tiny").expect("verify").iter().all(|c| c.ok));
    let partial = f.store.models_root().join(".partial");
    assert_eq!(
        std::fs::read_dir(partial).expect("partial dir").count(),
        0,
        "no leftovers"
    );
}

#[test]
fn hash_mismatch_is_refused_and_installs_nothing() {
    let f = fixture(Some(&"0".repeat(64)));
    let err = f.store.fetch("tiny", &mut |_| {}).expect_err("must refuse");
    let msg = err.to_string();
    assert!(msg.contains("sha256") && msg.contains("model.bin"), "{msg}");
    assert!(f.store.find("tiny").is_err());
    assert!(!f.store.models_root().join("tiny").exists());
}

#[test]
fn verify_detects_a_corrupted_file() {
    let f = fixture(None);
    let dir = f.store.fetch("tiny", &mut |_| {}).expect("fetch");
    let mut bytes = std::fs::read(dir.join("model.bin")).expect("read");
    bytes[10] ^= 0xff;
    std::fs::write(dir.join("model.bin"), bytes).expect("write");
    let checks = f.store.verify("tiny").expect("verify");
    assert!(checks.iter().any(|c| !c.ok && c.file == "model.bin"));
}

#[test]
fn a_missing_wheel_is_a_clear_pip_error() {
    let mut f = fixture(None);
    f.store.manifest.models[0].files[0].parts[1] = percept_models::Part::Wheel {
        wheel: "no-such-wheel==9.9.9".into(),
        path: "x".into(),
    };
    let msg = f
        .store
        .fetch("tiny", &mut |_| {})
        .expect_err("fails")
        .to_string();
    assert!(msg.contains("no-such-wheel==9.9.9"), "{msg}");
    assert!(f.store.find("tiny").is_err());
}

#[test]
fn unknown_ids_list_the_known_ones() {
    let f = fixture(None);
    let msg = f.store.find("nope").expect_err("unknown").to_string();
    assert!(msg.contains("nope") && msg.contains("tiny"), "{msg}");
}

#[test]
fn a_user_model_dir_wins_over_the_cache() {
    let mut f = fixture(None);
    let cached = f.store.fetch("tiny", &mut |_| {}).expect("fetch");
    let user = f.store.home.join("mine");
    std::fs::create_dir_all(user.join("tiny")).expect("mkdir");
    for name in ["model.bin", "config.json"] {
        std::fs::copy(cached.join(name), user.join("tiny").join(name)).expect("copy");
    }
    f.store.model_dirs.push(user.clone());
    assert_eq!(f.store.find("tiny").expect("found"), user.join("tiny"));
}
