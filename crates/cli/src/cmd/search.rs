//! `percept search`: rank the images of a folder by similarity to a text or an image.

use super::common::{require_clip, vision_def, DeviceArg};
use percept_pipeline::search::{search_folder, Query};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Folder of images (searched recursively; hidden files skipped).
    dir: PathBuf,
    /// What to look for, in words.
    #[arg(required_unless_present = "image")]
    query: Option<String>,
    /// Search by example: images similar to this one.
    #[arg(long, value_name = "FILE", conflicts_with = "query")]
    image: Option<PathBuf>,
    /// Number of results.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// One JSON object per result.
    #[arg(long)]
    json: bool,
    /// CLIP model folder (config.json + model.safetensors); default: the store's clip-vit-base-patch32.
    #[arg(long, value_name = "DIR")]
    clip_dir: Option<PathBuf>,
    /// Where the embedding index lives; default: $PERCEPT_CACHE_DIR or ~/.cache/percept.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let def = vision_def(args.clip_dir.as_deref(), args.device.device.as_deref())?;
    let clip = require_clip(&def)?;
    let query = match (&args.query, &args.image) {
        (_, Some(path)) => Query::LikeImage(path),
        (Some(text), None) => Query::Words(text),
        (None, None) => anyhow::bail!("give a text query or --image FILE"),
    };
    let found = search_folder(&clip, &args.dir, args.cache_dir.as_deref(), query, args.top)?;
    let u = &found.update;
    for f in &u.failed {
        eprintln!("percept: skipped {f}");
    }
    eprintln!(
        "index: {} added, {} changed, {} removed, {} unchanged ({} images)",
        u.added, u.changed, u.removed, u.unchanged, found.indexed
    );
    for (path, score) in &found.hits {
        if args.json {
            println!("{}", serde_json::json!({ "path": path, "score": score }));
        } else {
            println!("{score:.4}  {}", path.display());
        }
    }
    Ok(())
}
