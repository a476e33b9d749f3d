//! `percept demo`: the tour over the bundled sample media. Each step is a real `percept`
//! subcommand run as a child process with inherited output, so the demo shows exactly what a
//! user would type; the front end prints the headings and the summary.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};

/// One step: a heading and the `percept` arguments it runs.
#[derive(Debug, Clone)]
pub struct Step {
    pub title: &'static str,
    pub args: Vec<String>,
}

/// Why a step did not succeed; its own output (inherited) already said more.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("failed with {0} (see above)")]
    Failed(ExitStatus),
    #[error("could not start: {0}")]
    Start(std::io::Error),
}

impl Step {
    /// Runs the step with `exe` (the `percept` binary), its output going where ours goes.
    pub fn run(&self, exe: &Path) -> Result<(), StepError> {
        match Command::new(exe).args(&self.args).status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(StepError::Failed(s)),
            Err(e) => Err(StepError::Start(e)),
        }
    }
}

/// The demo's steps over `assets`, starting with fetching the default models when `fetch`.
pub fn steps(assets: &Path, fetch: bool) -> Vec<Step> {
    let audio = assets.join("audio/jfk.wav").display().to_string();
    let image = assets.join("images/chelsea.png").display().to_string();
    let report = std::env::temp_dir().join("percept-demo-report.jsonl");
    let (assets, report) = (assets.display().to_string(), report.display().to_string());
    let step = |title, args: &[&str]| Step {
        title,
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let ask = "Summarise what the speaker asks of the audience.";
    let mut steps = Vec::new();
    if fetch {
        let title = "Fetching the default models (skipped when present)";
        steps.push(step(title, &["models", "fetch"]));
    }
    steps.extend([
        step("Transcribe a speech clip", &["transcribe", &audio]),
        step(
            "Answer a question about the speech",
            &["ask", "--audio", &audio, "--max-tokens", "80", ask],
        ),
        step(
            "Describe an image",
            &[
                "ask",
                "--image",
                &image,
                "--max-tokens",
                "80",
                "Describe this image.",
            ],
        ),
        step(
            "Batch over the sample folder into a JSONL report",
            &[
                "batch",
                &assets,
                "--out",
                &report,
                "--keep-going",
                "--exclude",
                "*.{md,toml,txt,gz}",
            ],
        ),
    ]);
    steps
}

/// The bundled sample media: `assets/` under the working directory when it is the
/// repository's, else the one beside this crate's sources.
pub fn default_assets() -> PathBuf {
    let here = PathBuf::from("assets");
    if here.join("audio").exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetching_comes_first_and_only_when_asked() {
        let with = steps(Path::new("a"), true);
        let without = steps(Path::new("a"), false);
        assert_eq!(with.len(), without.len() + 1);
        assert_eq!(with[0].args, ["models", "fetch"]);
        assert_eq!(without[0].args, ["transcribe", "a/audio/jfk.wav"]);
    }
}
