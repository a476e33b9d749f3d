//! `percept tag`: zero-shot CLIP tags, ImageNet labels, the text OCR reads, and model-free
//! image facts.

use super::common::{vision_def, DeviceArg};
use anyhow::Context;
use percept_clip::labels::{parse_vocabulary, CacheStatus, BUNDLED_LABELS};
use percept_clip::TEMPLATES;
use percept_core::{DecodedImage, VisionContext};
use percept_media::image::{decode_image_file, ImageOptions};
use percept_pipeline::service::VisionWorker;
use percept_pipeline::{load_classifier, load_ocr, load_vision, missing_clip_line, LabelChoice};
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Image files (jpeg, png, webp, gif, bmp, tiff).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Number of tags per image.
    #[arg(long, default_value_t = 5)]
    top: usize,
    /// One JSON object per image (JSON lines).
    #[arg(long)]
    json: bool,
    /// CLIP model folder (config.json + model.safetensors); default: the store's clip-vit-base-patch32.
    #[arg(long, value_name = "DIR")]
    clip_dir: Option<PathBuf>,
    /// Label vocabulary, one label per line; default: the bundled list.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// Print GPS coordinates when an image has them (otherwise only "present").
    #[arg(long)]
    gps: bool,
    /// Where label embeddings are cached; default: $PERCEPT_CACHE_DIR or ~/.cache/percept.
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

fn load_labels(path: Option<&Path>) -> anyhow::Result<Vec<String>> {
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?
        }
        None => BUNDLED_LABELS.to_string(),
    };
    let labels = parse_vocabulary(&text);
    anyhow::ensure!(!labels.is_empty(), "the label vocabulary is empty");
    Ok(labels)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let labels = load_labels(args.labels.as_deref())?;
    let n = labels.len();
    let mut def = vision_def(args.clip_dir.as_deref(), args.device.device.as_deref())?;
    def.vision.tags = Some(args.top);
    let choice = LabelChoice {
        labels: Some(labels),
        cache_dir: args.cache_dir.clone(),
    };
    let stage = match load_vision(&def, &choice)? {
        Some(v) => {
            match v.labels_cache {
                CacheStatus::Hit => eprintln!("label embeddings: cache hit ({n} labels)"),
                CacheStatus::Built => eprintln!(
                    "label embeddings: computed {n} labels x {} prompts (cached for next run)",
                    TEMPLATES.len()
                ),
            }
            Some(v.stage.without_embedding())
        }
        None => {
            eprintln!(
                "percept: {} (showing image facts only)",
                missing_clip_line()
            );
            None
        }
    };
    // The ImageNet classifier is in the default model set; without it, CLIP alone tags.
    let classifier = match load_classifier(&def) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("percept: ImageNet labels unavailable: {e}");
            None
        }
    };
    let ocr = match load_ocr() {
        Ok(o) => Some(o),
        Err(e) => {
            eprintln!("percept: {e}");
            None
        }
    };
    let opts = ImageOptions {
        gps_coordinates: args.gps,
        ..ImageOptions::default()
    };
    let worker = VisionWorker::new(stage, classifier, opts.clone()).with_ocr(ocr);
    let mut failed = 0;
    for image in decode_each(&args.images, &opts, &mut failed) {
        let ctx = worker
            .see(&image)
            .map_err(|e| anyhow::anyhow!("{}: {e}", image.source))?;
        if args.json {
            println!("{}", serde_json::to_string(&ctx)?);
        } else {
            print_text(&ctx);
        }
    }
    anyhow::ensure!(
        failed == 0,
        "{failed} of {} images could not be read",
        args.images.len()
    );
    Ok(())
}

/// Decodes each image, printing the error for (and counting) each one that fails, so one
/// bad file never stops the others.
pub(crate) fn decode_each<'a>(
    paths: &'a [PathBuf],
    opts: &'a ImageOptions,
    failed: &'a mut usize,
) -> impl Iterator<Item = DecodedImage> + 'a {
    paths
        .iter()
        .filter_map(move |path| match decode_image_file(path, opts) {
            Ok(image) => Some(image),
            Err(e) => {
                eprintln!("percept: {e}");
                *failed += 1;
                None
            }
        })
}

fn print_text(ctx: &VisionContext) {
    let f = &ctx.facts;
    println!("{}: {}x{} {}", ctx.source, f.width, f.height, f.format);
    for (k, v) in &f.extra {
        println!("  {k}: {v}");
    }
    if !ctx.labels.is_empty() {
        let labels: Vec<String> = ctx
            .labels
            .iter()
            .map(|t| format!("{} {:.3}", t.label, t.score))
            .collect();
        println!("  imagenet: {}", labels.join(", "));
    }
    if !ctx.tags.is_empty() {
        let tags: Vec<String> = ctx
            .tags
            .iter()
            .map(|t| format!("{} {:.3}", t.label, t.score))
            .collect();
        println!("  tags: {}", tags.join(", "));
    }
    if let Some(text) = &ctx.ocr {
        println!("  text: {text}");
    }
}
