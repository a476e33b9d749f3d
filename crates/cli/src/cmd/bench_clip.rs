//! `percept bench clip`: image-tower throughput (the PyTorch side is `benches/clip_vs_torch.py`).

use percept_pipeline::demo::default_assets;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CLIP model folder (or the store's clip-vit-base-patch32 when present).
    #[arg(long, value_name = "DIR", conflicts_with = "random")]
    pub model: Option<PathBuf>,
    /// Random weights with a named shape (`vit-b-32`): no download needed, same compute.
    #[arg(long, value_name = "SHAPE", value_parser = ["vit-b-32"])]
    pub random: Option<String>,
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Timed batches; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeats: usize,
    /// Image to preprocess and encode (default: the bundled photo of a rocket).
    #[arg(long)]
    pub image: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    // `--random` has one shape (clap checks it), ViT-B/32, which the bench builds itself.
    let def = match &args.random {
        Some(_) => None,
        None => Some(super::common::vision_def(args.model.as_deref(), None)?),
    };
    let rocket = || default_assets().join("images/rocket.jpg");
    let image = args.image.clone().unwrap_or_else(rocket);
    let b = percept_pipeline::bench::clip(def.as_ref(), &image, args.batch, args.repeats)?;
    if args.json {
        println!("{}", serde_json::to_string(&b)?);
        return Ok(());
    }
    let (ms, pre) = (b.encoder_ms_per_image, b.preprocess_ms_per_image);
    println!("load          {:.2} s", b.load_s);
    println!("batch         {}", b.batch);
    println!(
        "encoder       {ms:.1} ms/image ({:.1} images/s)",
        b.images_per_s
    );
    println!(
        "preprocess    {pre:.2} ms/image ({:.1}% of the encoder)",
        100.0 * pre / ms
    );
    println!("peak RSS      {:.0} MiB", b.peak_rss_mib);
    Ok(())
}
