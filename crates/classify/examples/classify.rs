//! Top-5 ImageNet classes of image files, and the forward time of a batch.
//!
//! `cargo run --release -p percept-classify --example classify -- [--model PATH]
//!  [--repeats N] [--batch N] [--json] IMAGE...`
//! With `--batch N`, the images are repeated to fill a batch of N, preprocessed once (timed),
//! and the forward pass on that batch is timed `--repeats` times after one warm-up; the
//! median is reported (benches/classify_vs_torch.py reads the `--json` line).

use candle_core::{Device, Tensor};
use percept_classify::Classifier;
use percept_media::image::{decode_image_file, ImageOptions};
use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut model = None;
    let (mut repeats, mut batch, mut json) = (0usize, 0usize, false);
    let mut files = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = args.next().map(PathBuf::from),
            "--repeats" => repeats = args.next().ok_or("--repeats N")?.parse()?,
            "--batch" => batch = args.next().ok_or("--batch N")?.parse()?,
            "--json" => json = true,
            _ => files.push(PathBuf::from(a)),
        }
    }
    let dir = match model {
        Some(p) => p,
        None => percept_models::locate(percept_classify::MODEL_ID)?,
    };
    let t = Instant::now();
    let clf = Classifier::load(&dir, &Device::Cpu)?;
    let load_s = t.elapsed().as_secs_f64();
    let images = files
        .iter()
        .map(|f| decode_image_file(f, &ImageOptions::default()))
        .collect::<Result<Vec<_>, _>>()?;
    let refs: Vec<_> = images.iter().collect();
    if batch == 0 {
        for (f, labels) in files.iter().zip(clf.classify(&refs)?) {
            println!("{}", f.display());
            for l in labels {
                println!("  {:4} {:<30} {:.4}", l.index, l.name, l.probability);
            }
        }
        return Ok(());
    }
    if refs.is_empty() {
        return Err("--batch needs at least one image".into());
    }
    let t = Instant::now();
    let mut pixels = Vec::new();
    for img in refs.iter().cycle().take(batch) {
        pixels.extend(clf.preprocess(img)?);
    }
    let preprocess_s = t.elapsed().as_secs_f64();
    let crop = clf.model.config.preprocess.crop as usize;
    let x = Tensor::from_vec(pixels, (batch, 3, crop, crop), &Device::Cpu)?;
    clf.logits(&x)?; // warm-up
    let mut times = Vec::new();
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        clf.logits(&x)?;
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let (median, best) = (times[times.len() / 2], times[0]);
    let rate = batch as f64 / median;
    if json {
        println!("{{\"batch\": {batch}, \"median_s\": {median}, \"images_per_s\": {rate}, \"best_s\": {best}, \"load_s\": {load_s}, \"preprocess_s\": {preprocess_s}}}");
    } else {
        println!(
            "batch {batch}: forward median {:.1} ms, best {:.1} ms, {rate:.1} images/s \
             (preprocess {:.1} ms, load {load_s:.2} s)",
            median * 1e3,
            best * 1e3,
            preprocess_s * 1e3
        );
    }
    Ok(())
}
