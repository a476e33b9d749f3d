use crate::NotBuilt;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Arguments (this benchmark is not built yet).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

pub fn run(_args: Args) -> anyhow::Result<()> {
    Err(NotBuilt {
        command: "bench pipeline",
        issue: "Pipeline",
    }
    .into())
}
