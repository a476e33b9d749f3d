//! A tour over the bundled sample media (the steps are `percept_pipeline::demo`'s). Every
//! step runs even after a failure, and the demo exits non-zero when any step failed.

use percept_pipeline::demo;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder with the sample media (default: the repository's assets/).
    #[arg(long)]
    assets: Option<PathBuf>,
    /// Do not fetch missing default models first.
    #[arg(long)]
    no_fetch: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let assets = args.assets.unwrap_or_else(demo::default_assets);
    let exe = std::env::current_exe()?;
    let mut outcomes = Vec::new();
    for step in demo::steps(&assets, !args.no_fetch) {
        section(step.title);
        println!("$ percept {}", step.args.join(" "));
        outcomes.push((step.title, step.run(&exe)));
    }
    section("Summary");
    for (title, outcome) in &outcomes {
        match outcome {
            Ok(()) => println!("  {title}: ok"),
            Err(e) => println!("  {title}: {e}"),
        }
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
