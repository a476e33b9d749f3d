//! Tesseract's own program, one process per image: English, automatic page layout, the page
//! in on stdin (PGM) and its word table (TSV) out on stdout, killed at a deadline.

use crate::error::OcrError;
use crate::page::Page;
use crate::process::{run, Ran};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The program run, found on `PATH` (Debian: the `tesseract-ocr` package).
pub const PROGRAM: &str = "tesseract";
/// How long one image may take: a photo takes a tenth of a second, a dense page of 700 words
/// about five seconds on one core.
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// The most of Tesseract's word table read (a full page is well under 1 MiB).
const TSV_CAP: u64 = 16 << 20;

/// Tesseract, checked once to be installed with its English data. Cheap to clone and share:
/// each read is a process of its own.
#[derive(Debug, Clone)]
pub struct Ocr {
    program: PathBuf,
    timeout: Duration,
}

impl Ocr {
    /// [`Ocr::with_program`] for `tesseract` on `PATH`.
    pub fn new() -> Result<Ocr, OcrError> {
        Ocr::with_program(PROGRAM)
    }

    /// Checks that `program` runs and lists English among its languages;
    /// [`OcrError::NotInstalled`] when it does not.
    pub fn with_program(program: impl Into<PathBuf>) -> Result<Ocr, OcrError> {
        let ocr = Ocr {
            program: program.into(),
            timeout: TIMEOUT,
        };
        let mut cmd = ocr.command();
        cmd.arg("--list-langs");
        match run(cmd, Vec::new(), 64 * 1024, TIMEOUT) {
            Ran::Exited {
                success: true,
                stdout,
                ..
            } if String::from_utf8_lossy(&stdout)
                .lines()
                .any(|l| l.trim() == "eng") =>
            {
                Ok(ocr)
            }
            _ => Err(OcrError::NotInstalled),
        }
    }

    /// The same engine with another deadline per image.
    pub fn with_timeout(mut self, timeout: Duration) -> Ocr {
        self.timeout = timeout;
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        // One thread per process: OpenMP's threads cost more than they save on one page, and
        // the model stages already use every core.
        cmd.env("OMP_THREAD_LIMIT", "1");
        cmd
    }

    /// Tesseract's word table (TSV) for `page`.
    pub(crate) fn tsv(&self, source: &str, page: &Page) -> Result<String, OcrError> {
        let failed = |message: String| OcrError::Engine {
            source_name: source.to_string(),
            message,
        };
        let mut cmd = self.command();
        cmd.args(["stdin", "stdout", "-l", "eng", "--psm", "3", "tsv"]);
        match run(cmd, page.pgm(), TSV_CAP, self.timeout) {
            Ran::Exited {
                success: true,
                stdout,
                ..
            } => Ok(String::from_utf8_lossy(&stdout).into_owned()),
            Ran::Exited { stderr, .. } if stderr.is_empty() => {
                Err(failed("it exited with an error".into()))
            }
            Ran::Exited { stderr, .. } => Err(failed(stderr)),
            Ran::NotStarted(e) => Err(failed(format!(
                "cannot start {}: {e}",
                self.program.display()
            ))),
            Ran::TimedOut => Err(OcrError::TimedOut {
                source_name: source.to_string(),
                secs: self.timeout.as_secs_f32(),
            }),
        }
    }
}
