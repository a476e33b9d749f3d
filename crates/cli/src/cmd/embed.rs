//! `percept embed`: unit-length CLIP image embeddings as JSON lines.

use super::common::{require_clip, vision_def, DeviceArg};
use super::tag::decode_each;
use anyhow::Context;
use percept_media::image::ImageOptions;
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image files.
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Write the JSON lines here instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// CLIP model folder (config.json + model.safetensors); default: the store's clip-vit-base-patch32.
    #[arg(long, value_name = "DIR")]
    clip_dir: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let clip = require_clip(&vision_def(
        args.clip_dir.as_deref(),
        args.device.device.as_deref(),
    )?)?;
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let opts = ImageOptions::default();
    let mut failed = 0;
    for image in decode_each(&args.images, &opts, &mut failed) {
        let emb = clip.embed_images(&[&image])?.pop().unwrap_or_default();
        let line = serde_json::json!({ "source": image.source, "embedding": emb });
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} images could not be read",
        args.images.len()
    );
    Ok(())
}
