//! `percept fleet` end to end, on a real `redis-server` (installed by `scripts/setup`) that each
//! test starts on a free loopback port with AOF persistence (`appendfsync always`) and stops:
//! three workers match a single-machine `percept batch`; a worker killed with -9 mid-file and
//! redis-server killed with -9 and restarted lose nothing; a file that hangs its worker is
//! dead-lettered after N attempts while the rest of the queue finishes.

mod support;
use support::{batch_records, encode, require_program, signal};

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How long any one step may take before the test gives up (a guard, never an assertion).
const PATIENCE: Duration = Duration::from_secs(240);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

struct Redis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Redis {
    fn start(dir: &Path) -> Redis {
        require_program(
            "redis-server",
            &["--version"],
            "scripts/setup installs it (apt-get install redis-server)",
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        Redis::spawn(dir, port)
    }

    fn spawn(dir: &Path, port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let r = Redis {
            child,
            port,
            dir: dir.to_path_buf(),
        };
        r.wait_ready();
        r
    }

    /// Until PING answers PONG (not LOADING).
    fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let pong = TcpStream::connect(("127.0.0.1", self.port)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2)))?;
                s.write_all(b"PING\r\n")?;
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line)?;
                Ok(line)
            });
            if pong.is_ok_and(|l| l.starts_with("+PONG")) {
                return;
            }
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// kill -9, then a new redis-server on the same port and data directory.
    fn kill_and_restart(&mut self) {
        signal(self.child.id(), "-KILL");
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(1500));
        *self = Redis::spawn(&self.dir.clone(), self.port);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn copy(from: &str, to: &Path) {
    std::fs::create_dir_all(to.parent().expect("a parent")).expect("mkdir");
    std::fs::copy(root().join(from), to).unwrap_or_else(|e| panic!("copy {from}: {e}"));
}

/// Audio, images and files that fail, the names `percept batch` records them by.
fn mixed(top: &Path, audio: usize) -> Vec<&'static str> {
    let d = top.join("media");
    let mut names = vec![
        "media/horse.png",
        "media/pics/rocket.jpg",
        "media/speech/jfk.mp3",
        "media/truncated.png",
        "media/text.wav",
    ];
    copy("assets/images/horse.png", &d.join("horse.png"));
    copy("assets/images/rocket.jpg", &d.join("pics/rocket.jpg"));
    copy("assets/audio/jfk.mp3", &d.join("speech/jfk.mp3"));
    for (i, name) in ["a.wav", "b.wav", "c.wav"].iter().enumerate().take(audio) {
        copy("assets/audio/jfk.wav", &d.join("speech").join(name));
        names.push(
            [
                "media/speech/a.wav",
                "media/speech/b.wav",
                "media/speech/c.wav",
            ][i],
        );
    }
    let png = std::fs::read(root().join("assets/images/chelsea.png")).expect("png");
    std::fs::write(d.join("truncated.png"), &png[..png.len() / 3]).expect("write");
    std::fs::write(d.join("text.wav"), "this is text, not audio\n").expect("write");
    names.sort();
    names
}

fn require_models() {
    for id in ["whisper-tiny.en", "efficientnet-lite0"] {
        if let Err(e) = percept_models::locate(id) {
            panic!("model {id} is missing ({e}); run `percept models fetch`");
        }
    }
}

fn percept(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .current_dir(dir)
        .env("RAYON_NUM_THREADS", "1")
        .output()
        .expect("run percept")
}

fn fleet(dir: &Path, redis: &Redis, args: &[&str]) -> String {
    let mut all = vec!["fleet", "--redis"];
    let url = redis.url();
    all.push(&url);
    all.extend_from_slice(args);
    let out = percept(dir, &all);
    assert!(
        out.status.success(),
        "percept {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn status(dir: &Path, redis: &Redis) -> Value {
    serde_json::from_str(&fleet(dir, redis, &["--status", "--json"])).expect("status JSON")
}

/// A `percept fleet --work` process with one compute thread; its stderr goes to a file.
struct Worker {
    child: Child,
    log: PathBuf,
}

impl Worker {
    fn start(dir: &Path, redis: &Redis, n: usize) -> Worker {
        let log = dir.join(format!("worker{n}.log"));
        let child = Command::new(env!("CARGO_BIN_EXE_percept"))
            .args(["fleet", "--redis", &redis.url(), "--work"])
            .current_dir(dir)
            .env("RAYON_NUM_THREADS", "1")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log"))
            .spawn()
            .expect("start a worker");
        Worker { child, log }
    }

    /// The consumer name: `HOST-PID`.
    fn owns(&self, consumer: &str) -> bool {
        consumer.ends_with(&format!("-{}", self.child.id()))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the exit; true when it succeeded.
    fn wait(&mut self) -> bool {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.success();
            }
            assert!(
                Instant::now() < deadline,
                "worker still running:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `--status` until `ready` holds for it.
fn wait_status(dir: &Path, redis: &Redis, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let s = status(dir, redis);
        if ready(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "status never got there: {s}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The collected records by path; a file recorded twice fails.
fn collect(dir: &Path, redis: &Redis) -> BTreeMap<String, Value> {
    fleet(dir, redis, &["--collect", "fleet.jsonl"]);
    batch_records(&dir.join("fleet.jsonl"))
}

fn all_ok(recs: &BTreeMap<String, Value>, names: &[&str]) {
    assert_eq!(recs.keys().collect::<Vec<_>>(), names, "every file once");
    for (path, r) in recs {
        let want = if path.contains("text.wav") || path.contains("truncated") {
            "error"
        } else {
            "ok"
        };
        assert_eq!(r["status"], want, "{path}: {r}");
    }
}

#[test]
fn three_workers_record_what_a_single_machine_batch_records() {
    require_models();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let names = mixed(dir, 2);
    let redis = Redis::start(dir);
    let single = percept(
        dir,
        &["batch", "media", "--out", "single.jsonl", "--keep-going"],
    );
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    let queued = fleet(dir, &redis, &["--enqueue", "media"]);
    assert!(queued.contains("7 queued"), "{queued}");
    let mut workers: Vec<Worker> = (0..3).map(|i| Worker::start(dir, &redis, i)).collect();
    for w in &mut workers {
        assert!(w.wait(), "{}", w.log());
    }
    let s = status(dir, &redis);
    assert_eq!(
        (s["queued"].as_u64(), s["pending"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(
        (s["ok"].as_u64(), s["error"].as_u64()),
        (Some(5), Some(2)),
        "{s}"
    );
    let got = collect(dir, &redis);
    let want = batch_records(&dir.join("single.jsonl"));
    all_ok(&got, &names);
    for (path, mut w) in want {
        let mut g = got[&path].clone();
        g["timings"] = Value::Null;
        w["timings"] = Value::Null;
        assert_eq!(g, w, "{path}");
    }
    // A second enqueue finds every file recorded.
    let again = fleet(dir, &redis, &["--enqueue", "media"]);
    assert!(again.contains("0 queued, 7 already recorded"), "{again}");
}

#[test]
fn a_worker_killed_mid_file_loses_nothing() {
    require_models();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let names = mixed(dir, 3);
    let redis = Redis::start(dir);
    fleet(dir, &redis, &["--enqueue", "media", "--claim-idle-s", "1"]);
    let mut workers: Vec<Worker> = (0..2).map(|i| Worker::start(dir, &redis, i)).collect();
    // Kill a worker while it holds a file, then check that it still held one once dead.
    let busy = |s: &Value| {
        s["workers"].as_array().is_some_and(|ws| {
            ws.iter().any(|w| {
                w["pending"].as_u64() > Some(0) && workers[0].owns(w["name"].as_str().unwrap_or(""))
            })
        })
    };
    wait_status(dir, &redis, busy);
    signal(workers[0].child.id(), "-KILL");
    let _ = workers[0].child.wait();
    let s = status(dir, &redis);
    let held = s["workers"]
        .as_array()
        .and_then(|ws| {
            ws.iter()
                .find(|w| workers[0].owns(w["name"].as_str().unwrap_or("")))
        })
        .and_then(|w| w["pending"].as_u64())
        .unwrap_or(0);
    assert!(held > 0, "killed between files: {s}");
    assert!(workers[1].wait(), "{}", workers[1].log());
    let log = workers[1].log();
    assert!(!log.contains(" 0 taken over"), "{log}");
    all_ok(&collect(dir, &redis), &names);
}

#[test]
fn redis_killed_and_restarted_mid_run_loses_nothing() {
    require_models();
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let names = mixed(dir, 3);
    let mut redis = Redis::start(dir);
    fleet(dir, &redis, &["--enqueue", "media", "--claim-idle-s", "2"]);
    let mut workers: Vec<Worker> = (0..2).map(|i| Worker::start(dir, &redis, i)).collect();
    let s = wait_status(dir, &redis, |s| s["ok"].as_u64() >= Some(1));
    let left = s["queued"].as_u64().unwrap_or(0) + s["pending"].as_u64().unwrap_or(0);
    assert!(left > 0, "the run was over: {s}");
    redis.kill_and_restart();
    for w in &mut workers {
        assert!(w.wait(), "{}", w.log());
        let log = w.log();
        assert!(!log.contains("waited 0 times for Redis"), "{log}");
    }
    all_ok(&collect(dir, &redis), &names);
}

#[test]
fn a_file_that_hangs_its_worker_is_dead_lettered_and_the_rest_finish() {
    require_models();
    require_program("sox", &["--version"], "scripts/setup installs it");
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path();
    let mut names = mixed(dir, 0);
    // Twenty minutes of speech: far past the run's file timeout on any machine.
    let src = root().join("assets/audio/jfk.wav");
    let long = dir.join("media/speech/long.wav");
    encode(
        "sox",
        &[
            src.to_str().expect("utf-8"),
            long.to_str().expect("utf-8"),
            "repeat",
            "110",
        ],
    );
    names.push("media/speech/long.wav");
    names.sort();
    let redis = Redis::start(dir);
    fleet(
        dir,
        &redis,
        &[
            "--enqueue",
            "media",
            "--max-attempts",
            "2",
            "--claim-idle-s",
            "1",
            "--file-timeout-s",
            "10",
        ],
    );
    let mut workers: Vec<Worker> = (0..3).map(|i| Worker::start(dir, &redis, i)).collect();
    let ended: Vec<bool> = workers.iter_mut().map(|w| w.wait()).collect();
    let logs: Vec<String> = workers.iter().map(Worker::log).collect();
    // Each attempt stopped the worker that ran it; the third worker dead-lettered the file.
    assert_eq!(ended.iter().filter(|&&ok| ok).count(), 1, "{logs:#?}");
    assert_eq!(
        logs.iter()
            .filter(|l| l.contains("long.wav: no file finished in"))
            .count(),
        2,
        "{logs:#?}"
    );
    let s = status(dir, &redis);
    assert_eq!(s["dead"][0]["path"], "media/speech/long.wav", "{s}");
    assert_eq!(s["dead"][0]["attempts"], 2, "{s}");
    assert_eq!(
        (s["queued"].as_u64(), s["pending"].as_u64()),
        (Some(0), Some(0)),
        "{s}"
    );
    assert_eq!(
        (s["ok"].as_u64(), s["error"].as_u64()),
        (Some(3), Some(2)),
        "{s}"
    );
    let text = fleet(dir, &redis, &["--status"]);
    assert!(text.contains("1 dead"), "{text}");
    assert!(
        text.contains("dead: media/speech/long.wav (2 attempts)"),
        "{text}"
    );
    let recs = collect(dir, &redis);
    assert_eq!(recs.keys().collect::<Vec<_>>(), names, "every file once");
    let dead = &recs["media/speech/long.wav"];
    assert_eq!(dead["status"], "error");
    assert!(
        dead["error"]
            .as_str()
            .unwrap_or("")
            .contains("dead-lettered after 2 attempts"),
        "{dead}"
    );
    for p in [
        "media/horse.png",
        "media/pics/rocket.jpg",
        "media/speech/jfk.mp3",
    ] {
        assert_eq!(recs[p]["status"], "ok", "{p}");
    }
}
