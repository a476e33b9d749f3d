//! A tour over the bundled sample media. Each step runs a real `percept` subcommand, so the
//! demo shows exactly what a user would type; a step whose stage is not built says so.

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
    if !args.no_fetch {
        section("Fetching the default models (skipped when present)");
        run_step(&exe, &["models".into(), "fetch".into()]);
    }
    let audio = assets.join("audio/jfk.wav");
    let image = assets.join("images/chelsea.png");
    let report = std::env::temp_dir().join("percept-demo-report.jsonl");
    let p = |p: &Path| p.display().to_string();
    let steps = [
        Step {
            title: "Transcribe a speech clip",
            args: vec!["transcribe".into(), p(&audio)],
        },
        Step {
            title: "Answer a question about the speech",
            args: vec![
                "ask".into(),
                "--audio".into(),
                p(&audio),
                "--max-tokens".into(),
                "80".into(),
                "Summarise what the speaker asks of the audience.".into(),
            ],
        },
        Step {
            title: "Describe an image",
            args: vec![
                "ask".into(),
                "--image".into(),
                p(&image),
                "--max-tokens".into(),
                "80".into(),
                "Describe this image.".into(),
            ],
        },
        Step {
            title: "Batch over the sample folder into a JSONL report",
            args: vec![
                "batch".into(),
                p(&assets),
                "--out".into(),
                p(&report),
                "--keep-going".into(),
                "--exclude".into(),
                "*.{md,toml,txt,gz}".into(),
            ],
        },
    ];
    let mut outcomes = Vec::new();
    for step in &steps {
        section(step.title);
        outcomes.push((step.title, run_step(&exe, &step.args)));
    }
    section("Summary");
    for (title, outcome) in outcomes {
        println!("  {title}: {outcome}");
    }
    Ok(())
}

fn section(title: &str) {
    println!("\n=== {title} ===");
}

/// Runs one subcommand with inherited output; never fails the demo.
fn run_step(exe: &Path, args: &[String]) -> &'static str {
    println!("$ percept {}", args.join(" "));
    match Command::new(exe).args(args).status() {
        Ok(s) if s.success() => "ok",
        Ok(s) if s.code() == Some(3) => "not built yet",
        Ok(_) => "failed (see above)",
        Err(_) => "could not start",
    }
}

fn default_assets() -> PathBuf {
    let here = PathBuf::from("assets");
    if here.join("audio").exists() {
        return here;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets")
}
