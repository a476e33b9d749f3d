//! A tour over the bundled sample media. Each step runs a real `percept` subcommand, so the
//! demo shows exactly what a user would type. Every step runs even after a failure, and the
//! demo exits non-zero when any step failed.

use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder with the sample media (default: the repository's assets/).
    #[arg(long)]
    assets: Option<PathBuf>,
    /// Do not fetch missing default models first.
    #[arg(long)]
    no_fetch: bool,
}

struct Step {
    title: &'static str,
    args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let assets = args.assets.unwrap_or_else(default_assets);
    let exe = std::env::current_exe()?;
    let mut outcomes = Vec::new();
    if !args.no_fetch {
        let title = "Fetching the default models (skipped when present)";
        section(title);
        outcomes.push((title, run_step(&exe, &["models".into(), "fetch".into()])));
    }
    let audio = assets.join("audio/jfk.wav");
    let image = assets.join("images/chelsea.png");
    let report = std::env::temp_dir().join("percept-demo-report.jsonl");
    let (audio, image, assets, report) = (
        audio.display().to_string(),
        image.display().to_string(),
        assets.display().to_string(),
        report.display().to_string(),
    );
    let step = |title, args: &[&str]| Step {
        title,
        args: args.iter().map(|a| a.to_string()).collect(),
    };
    let ask = "Summarise what the speaker asks of the audience.";
    let steps = [
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
    ];
    for step in &steps {
        section(step.title);
        outcomes.push((step.title, run_step(&exe, &step.args)));
    }
    section("Summary");
    for (title, outcome) in &outcomes {
        println!(
            "  {title}: {}",
            outcome.as_ref().map_or_else(|e| e.as_str(), |()| "ok")
        );
    }
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} demo steps failed",
        outcomes.len()
    );
    Ok(())
}

fn section(title: &str) {
    println!("\n=== {title} ===");
}

/// Runs one subcommand with inherited output.
fn run_step(exe: &Path, args: &[String]) -> Result<(), String> {
    println!("$ percept {}", args.join(" "));
    match Command::new(exe).args(args).status() {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => Err(format!("failed with {s} (see above)")),
        Err(e) => Err(format!("could not start: {e}")),
    }
}

fn default_assets() -> PathBuf {
    let here = PathBuf::from("assets");
    if here.join("audio").exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}
