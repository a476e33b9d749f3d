//! What the end-to-end tests share: text normalising, signals to a child, required programs,
//! and a real `percept serve` child that listens on a free loopback port, loads the models
//! and is killed on drop.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const WHISPER: &str = "whisper-tiny.en";
pub const LLM: &str = "smollm2-135m-instruct";

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The model directories the server will load; a missing one fails the test with the fix.
pub fn require_models() {
    for id in [WHISPER, LLM] {
        if let Err(e) = percept_models::locate(id) {
            panic!("model {id} is missing ({e}); run `percept models fetch` first");
        }
    }
}

pub struct Server {
    child: Child,
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `percept serve` with the test models and `extra` flags, and waits for its
    /// `percept: listening on http://…` line.
    pub fn start(extra: &[&str]) -> Server {
        require_models();
        let mut args = vec!["--model", LLM, "--whisper", WHISPER];
        args.extend_from_slice(extra);
        Server::spawn(&args)
    }

    /// Starts `percept serve` with only `args` (e.g. `--pipeline quality`).
    pub fn spawn(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_percept"))
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn percept serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let pipe = child.stderr.take().expect("stderr piped");
        let log = stderr.clone();
        std::thread::spawn(move || {
            // Keep draining so the server never blocks on a full stderr pipe.
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("percept: listening on ") {
                    let _ = tx.send(url.trim().to_string());
                }
                if let Ok(mut s) = log.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        let url = match rx.recv_timeout(Duration::from_secs(90)) {
            Ok(url) => url,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "percept serve did not print its listening line in 90 s; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                );
            }
        };
        let server = Server { child, url, stderr };
        server.wait_healthy();
        server
    }

    /// The server may listen before its models are loaded (GET /health says 503 "loading").
    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            match self.get_status("/health") {
                Some(200) => return,
                _ if Instant::now() > deadline => panic!(
                    "percept serve was not healthy within 90 s; stderr:\n{}",
                    self.stderr()
                ),
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The HTTP status of a GET, or None when the connection fails.
    pub fn get_status(&self, path: &str) -> Option<u16> {
        let addr = self.url.strip_prefix("http://")?;
        let mut conn = TcpStream::connect(addr).ok()?;
        conn.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(conn, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
        let mut head = String::new();
        BufReader::new(conn).read_line(&mut head).ok()?;
        head.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server wrote to stderr so far (for failure messages).
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Peak resident memory of the server process so far, in MiB (VmHWM).
    pub fn peak_rss_mib(&self) -> f64 {
        self.proc_status_mib("VmHWM:")
    }

    /// Resident memory of the server process now, in MiB (VmRSS).
    pub fn rss_mib(&self) -> f64 {
        self.proc_status_mib("VmRSS:")
    }

    fn proc_status_mib(&self, key: &str) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("read /proc/<pid>/status");
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} line in /proc/<pid>/status"));
        kb / 1024.0
    }

    /// Whether the server process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test with the install line when a helper program is missing.
pub fn require_program(program: &str, probe: &[&str], install: &str) {
    let ok = Command::new(program)
        .args(probe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "`{program}` is required for this test: {install}");
}

/// Lower case, punctuation removed, single spaces: for comparing transcripts and answers.
pub fn normalise(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| *c != '\'')
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Sends `signal` (e.g. "-INT", "-TERM") to a process with the system's `kill`.
pub fn signal(pid: u32, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill {signal} {pid} failed");
}

/// Speaks `text` into a WAV file with espeak-ng (installed by `scripts/setup`).
pub fn speak(text: &str, path: &std::path::Path) {
    require_program("espeak-ng", &["--version"], "apt-get install espeak-ng");
    let ok = Command::new("espeak-ng")
        .args(["-v", "en-us", "-s", "130", "-g", "4", "-w"])
        .arg(path)
        .arg(text)
        .status()
        .expect("run espeak-ng");
    assert!(ok.success(), "espeak-ng failed on {text:?}");
}

/// Word error rate of `hypothesis` against `reference`, in percent: word substitutions,
/// insertions and deletions (Levenshtein over [`normalise`]d words) per reference word.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = normalise(reference);
    let h = normalise(hypothesis);
    let r: Vec<&str> = r.split_whitespace().collect();
    let h: Vec<&str> = h.split_whitespace().collect();
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for (i, rw) in r.iter().enumerate() {
        let mut cur = vec![i + 1; h.len() + 1];
        for (j, hw) in h.iter().enumerate() {
            let sub = prev[j] + usize::from(rw != hw);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    100.0 * prev[h.len()] as f64 / r.len().max(1) as f64
}

/// Runs an encoder (`ffmpeg`, `opusenc`); a missing one fails with the command that installs it.
pub fn encode(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{program}` ({e}): run ./scripts/setup --test to install it")
        });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs the percept binary in `dir` and waits for it.
pub fn percept_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_percept"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run percept")
}

/// The stdout of a run that must have succeeded (its stderr in the failure message).
pub fn stdout_ok(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "percept failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The JSON lines `percept batch` wrote to `path`, by their `path`; a file recorded twice fails.
pub fn batch_records(
    path: &std::path::Path,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("records");
    let mut recs = std::collections::BTreeMap::new();
    for line in text.lines() {
        let r: serde_json::Value = serde_json::from_str(line).expect("a JSON record");
        let path = r["path"].as_str().expect("path").to_string();
        assert!(
            recs.insert(path.clone(), r).is_none(),
            "{path} recorded twice"
        );
    }
    recs
}

/// Uploads `bytes` as `file_name` to `/v1/audio/transcriptions` (plain-text response):
/// the status and the body.
pub fn upload_transcription(
    client: &reqwest::blocking::Client,
    url: &str,
    bytes: Vec<u8>,
    file_name: String,
) -> (u16, String) {
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "file",
            reqwest::blocking::multipart::Part::bytes(bytes).file_name(file_name),
        )
        .text("model", "whisper-1")
        .text("response_format", "text");
    let r = client
        .post(format!("{url}/v1/audio/transcriptions"))
        .multipart(form)
        .send()
        .expect("post");
    let status = r.status().as_u16();
    (status, r.text().expect("body"))
}

/// Posts `body` to `/v1/chat/completions`: the status and the JSON reply.
pub fn post_chat(
    client: &reqwest::blocking::Client,
    url: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let r = client
        .post(format!("{url}/v1/chat/completions"))
        .json(body)
        .send()
        .expect("post");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(serde_json::Value::Null))
}
