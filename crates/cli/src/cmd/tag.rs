//! `percept tag`: zero-shot CLIP tags, ImageNet labels, the text OCR reads, and model-free
//! image facts.

use super::common::{show_notices, vision_def, DeviceArg};
use percept_clip::labels::CacheStatus;
use percept_clip::TEMPLATES;
use percept_core::{DecodedImage, VisionContext};
use percept_media::image::{decode_image_file, ImageOptions};
use percept_pipeline::service::VisionWorker;
use percept_pipeline::{load_vision_stages, read_labels, LabelChoice};
use std::path::PathBuf;

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

pub fn run(args: Args) -> anyhow::Result<()> {
    let labels = read_labels(args.labels.as_deref())?;
    let n = labels.len();
    let mut def = vision_def(args.clip_dir.as_deref(), args.device.device.as_deref())?;
    def.vision.tags = Some(args.top);
    let choice = LabelChoice {
        labels: Some(labels),
        cache_dir: args.cache_dir.clone(),
    };
    let stages = load_vision_stages(&def, &choice)?;
    show_notices(&stages.notices);
    let stage = stages.vision.map(|v| {
        match v.labels_cache {
            CacheStatus::Hit => eprintln!("label embeddings: cache hit ({n} labels)"),
            CacheStatus::Built => eprintln!(
                "label embeddings: computed {n} labels x {} prompts (cached for next run)",
                TEMPLATES.len()
            ),
        }
        v.stage.without_embedding()
    });
    let opts = ImageOptions {
        gps_coordinates: args.gps,
        ..ImageOptions::default()
    };
    let worker = VisionWorker::new(stage, stages.classifier, opts.clone())
        .with_ocr(stages.ocr)
        .with_faces(stages.faces);
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
    for (name, tags) in [("imagenet", &ctx.labels), ("tags", &ctx.tags)] {
        if !tags.is_empty() {
            let scored: Vec<String> = tags
                .iter()
                .map(|t| format!("{} {:.3}", t.label, t.score))
                .collect();
            println!("  {name}: {}", scored.join(", "));
        }
    }
    if let Some(text) = &ctx.ocr {
        println!("  text: {text}");
    }
}
