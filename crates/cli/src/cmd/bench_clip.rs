//! `percept bench clip`: image-tower throughput (the PyTorch side is `benches/clip_vs_torch.py`).

use super::bench_util::{median, peak_rss_mib};
use anyhow::Context;
use percept_clip::{Clip, ClipConfig};
use percept_media::image::{decode_image_file, ImageOptions};
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// CLIP model folder (or the store's clip-vit-base-patch32 when present).
    #[arg(long, value_name = "DIR", conflicts_with = "random")]
    pub model: Option<PathBuf>,
    /// Random weights with a named shape (`vit-b-32`): no download needed, same compute.
    #[arg(long, value_name = "SHAPE")]
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
    let device = percept_clip::default_device();
    let loaded = Instant::now();
    let clip = match (&args.random, &args.model) {
        (Some(shape), _) => {
            anyhow::ensure!(
                shape == "vit-b-32",
                "unknown --random shape `{shape}` (known: vit-b-32)"
            );
            Clip::random(&ClipConfig::vit_b32(), &device)?
        }
        (None, dir) => {
            super::common::require_clip(&super::common::vision_def(dir.as_deref(), None)?)?
        }
    };
    let load_s = loaded.elapsed().as_secs_f64();
    let path = args.image.clone().unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets/images/rocket.jpg")
    });
    let image = decode_image_file(&path, &ImageOptions::default())
        .with_context(|| format!("decoding {}", path.display()))?;
    let batch = args.batch.max(1);

    let mut pre_ms = Vec::new();
    let mut enc_s = Vec::new();
    clip.embed_pixels(&[clip.pixel_values(&image)], true)?; // warm-up
    for _ in 0..args.repeats.max(1) {
        let t = Instant::now();
        let pixels: Vec<Vec<f32>> = (0..batch).map(|_| clip.pixel_values(&image)).collect();
        pre_ms.push(t.elapsed().as_secs_f64() * 1e3 / batch as f64);
        let t = Instant::now();
        clip.embed_pixels(&pixels, true)?;
        enc_s.push(t.elapsed().as_secs_f64());
    }
    let enc = median(enc_s);
    let pre = median(pre_ms);
    let per_image_ms = enc * 1e3 / batch as f64;
    let images_per_s = batch as f64 / enc;
    let rss = peak_rss_mib().unwrap_or(0.0);
    if args.json {
        let v = serde_json::json!({
            "load_s": load_s, "batch": batch, "images_per_s": images_per_s,
            "encoder_ms_per_image": per_image_ms, "preprocess_ms_per_image": pre,
            "peak_rss_mib": rss,
        });
        println!("{v}");
    } else {
        println!("load          {load_s:.2} s");
        println!("batch         {batch}");
        println!("encoder       {per_image_ms:.1} ms/image ({images_per_s:.1} images/s)");
        println!(
            "preprocess    {pre:.2} ms/image ({:.1}% of the encoder)",
            100.0 * pre / per_image_ms
        );
        println!("peak RSS      {rss:.0} MiB");
    }
    Ok(())
}
