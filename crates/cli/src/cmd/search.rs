//! `percept search`: rank the images of a folder by similarity to a text or an image.

use super::common::{require_clip, vision_def, DeviceArg};
use percept_clip::cache::default_cache_dir;
use percept_clip::index::SearchIndex;
use percept_media::image::{decode_image_file, ImageOptions};
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
    anyhow::ensure!(args.dir.is_dir(), "{}: not a folder", args.dir.display());
    let clip = require_clip(&vision_def(
        args.clip_dir.as_deref(),
        args.device.device.as_deref(),
    )?)?;
    let opts = ImageOptions::default();
    let index_path = SearchIndex::path_for(
        &args.cache_dir.clone().unwrap_or_else(default_cache_dir),
        &args.dir,
        &clip,
    )?;
    let mut index = SearchIndex::load(&index_path, &clip);
    let report = index.update(&args.dir, &clip, &opts)?;
    for f in &report.failed {
        eprintln!("percept: skipped {f}");
    }
    eprintln!(
        "index: {} added, {} changed, {} removed, {} unchanged ({} images)",
        report.added,
        report.changed,
        report.removed,
        report.unchanged,
        index.len()
    );
    index.save(&index_path)?;

    let query = match (&args.query, &args.image) {
        (_, Some(path)) => {
            let img = decode_image_file(path, &opts)?;
            clip.embed_images(&[&img])?.pop().unwrap_or_default()
        }
        (Some(text), None) => clip
            .embed_texts(&[text.as_str()], true)?
            .pop()
            .unwrap_or_default(),
        (None, None) => anyhow::bail!("give a text query or --image FILE"),
    };
    for (path, score) in index.search(&query, args.top) {
        if args.json {
            println!(
                "{}",
                serde_json::json!({ "path": args.dir.join(&path), "score": score })
            );
        } else {
            println!("{score:.4}  {}", args.dir.join(&path).display());
        }
    }
    Ok(())
}
