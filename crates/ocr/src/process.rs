//! Running a program on bytes with a deadline: Tesseract's page layout analysis has no way to
//! be cancelled (a cross-hatched picture kept it busy for minutes), so it runs as a process
//! that is killed when its time is up.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How one run ended.
#[derive(Debug)]
pub(crate) enum Ran {
    /// It exited by itself: its status, and stdout (cut at the cap) and stderr's last line.
    Exited {
        success: bool,
        stdout: Vec<u8>,
        stderr: String,
    },
    /// It could not be started (not installed, not executable).
    NotStarted(std::io::Error),
    /// It was killed at the deadline.
    TimedOut,
}

/// How often a running child is checked.
const POLL: Duration = Duration::from_millis(5);
/// Stderr kept, in bytes (Tesseract's warnings; only the last line is used).
const STDERR_CAP: u64 = 64 * 1024;

/// Runs `cmd` with `input` on stdin, reading at most `stdout_cap` bytes of its stdout, and
/// kills it if it has not exited after `timeout`.
pub(crate) fn run(mut cmd: Command, input: Vec<u8>, stdout_cap: u64, timeout: Duration) -> Ran {
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return Ran::NotStarted(e),
    };
    let started = Instant::now();
    // Each pipe on its own thread, so a child that writes before it has read all its input
    // cannot block on a full pipe; a child that exits early makes the write fail, which is fine.
    let mut stdin = child.stdin.take();
    let writer = thread::spawn(move || {
        if let Some(s) = stdin.as_mut() {
            let _ = s.write_all(&input);
        }
    });
    let stdout = child.stdout.take();
    let reader = thread::spawn(move || capped(stdout, stdout_cap));
    let stderr = child.stderr.take();
    let errors = thread::spawn(move || capped(stderr, STDERR_CAP));

    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() >= timeout => break None,
            Ok(None) => thread::sleep(POLL),
            Err(_) => break None,
        }
    };
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        // The pipe threads end when the last holder of the pipes is gone; nothing waits.
        return Ran::TimedOut;
    };
    let _ = writer.join();
    Ran::Exited {
        success: status.success(),
        stdout: reader.join().unwrap_or_default(),
        stderr: last_line(&errors.join().unwrap_or_default()),
    }
}

/// Up to `cap` bytes of `pipe`; the rest is read and dropped so the writer never blocks.
fn capped(pipe: Option<impl Read>, cap: u64) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(mut p) = pipe {
        let _ = (&mut p).take(cap).read_to_end(&mut out);
        let _ = std::io::copy(&mut p, &mut std::io::sink());
    }
    out
}

fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().rev().find(|l| !l.trim().is_empty());
    line.unwrap_or("").trim().chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn stdin_in_stdout_out() {
        match run(
            sh("tr a-z A-Z"),
            b"hello".to_vec(),
            1024,
            Duration::from_secs(10),
        ) {
            Ran::Exited {
                success, stdout, ..
            } => {
                assert!(success);
                assert_eq!(stdout, b"HELLO");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stdout_is_capped_and_stderr_keeps_its_last_line() {
        let script = "cat >/dev/null; head -c 100000 /dev/zero; printf 'one\\ntwo\\n' >&2; exit 3";
        match run(sh(script), vec![0; 200_000], 10, Duration::from_secs(10)) {
            Ran::Exited {
                success,
                stdout,
                stderr,
            } => {
                assert!(!success);
                assert_eq!(stdout.len(), 10);
                assert_eq!(stderr, "two");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_child_past_its_deadline_is_killed() {
        let t = Instant::now();
        let ran = run(
            sh("exec sleep 30"),
            Vec::new(),
            1024,
            Duration::from_millis(200),
        );
        assert!(matches!(ran, Ran::TimedOut), "{ran:?}");
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn a_missing_program_is_not_started() {
        let ran = run(
            Command::new("/nonexistent/tesseract"),
            Vec::new(),
            1024,
            Duration::from_secs(1),
        );
        assert!(matches!(ran, Ran::NotStarted(_)), "{ran:?}");
    }
}
