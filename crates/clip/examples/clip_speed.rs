//! Rough speed of a random ViT-B/32 image tower and of preprocessing, batch 8:
//! `cargo run --release -p percept-clip --example clip_speed [BATCH] [ROUNDS]`.
//! (The measured benchmark belongs to `percept bench clip`; this is a quick probe.)

use percept_clip::{Clip, ClipConfig};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(8);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let device = percept_clip::default_device();
    let clip = Clip::random(&ClipConfig::vit_b32(), &device)?;
    let img = percept_core::DecodedImage {
        source: "noise".into(),
        width: 640,
        height: 427,
        rgb: (0..640 * 427 * 3).map(|i| (i * 31 % 256) as u8).collect(),
        facts: Default::default(),
    };
    let t = Instant::now();
    let pixels: Vec<Vec<f32>> = (0..batch).map(|_| clip.pixel_values(&img)).collect();
    let pre = t.elapsed().as_secs_f64() / batch as f64;
    clip.embed_pixels(&pixels, true)?; // warm-up
    let t = Instant::now();
    for _ in 0..rounds {
        clip.embed_pixels(&pixels, true)?;
    }
    let enc = t.elapsed().as_secs_f64() / (rounds * batch) as f64;
    println!(
        "batch {batch}: encoder {:.1} ms/image ({:.1} images/s), preprocessing 640x427 {:.2} ms/image ({:.1}% of encoder)",
        enc * 1e3,
        1.0 / enc,
        pre * 1e3,
        100.0 * pre / enc
    );
    Ok(())
}
