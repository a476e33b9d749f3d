//! `percept tag`: zero-shot CLIP tags plus model-free image facts.

use anyhow::Context;
use percept_clip::cache::default_cache_dir;
use percept_clip::labels::{parse_vocabulary, CacheStatus, BUNDLED_LABELS};
use percept_clip::{Clip, ClipError, LabelSet, VisionStage, MODEL_ID, TEMPLATES};
use percept_core::{DecodedImage, VisionContext};
use percept_media::image::{decode_image_file, ImageOptions};
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
}

/// Loads CLIP from `--clip-dir` or the model store. `Ok(None)` means "no weights here"
/// (the caller prints one line on how to get them); other failures are errors.
pub(crate) fn load_clip(clip_dir: Option<&Path>) -> anyhow::Result<Option<Clip>> {
    let dir = match clip_dir {
        Some(d) => d.to_path_buf(),
        None => match percept_models::locate(MODEL_ID) {
            Ok(d) => d,
            Err(_) => return Ok(None),
        },
    };
    match Clip::load(&dir, &percept_clip::default_device()) {
        Ok(c) => Ok(Some(c)),
        Err(ClipError::MissingWeights { .. }) => Ok(None),
        Err(e) => Err(e).context("loading CLIP"),
    }
}

pub(crate) fn missing_weights_line() -> String {
    ClipError::MissingWeights {
        dir: "no --clip-dir, not in the model store".to_string(),
    }
    .to_string()
}

pub(crate) fn cache_dir(arg: Option<&Path>) -> PathBuf {
    arg.map(Path::to_path_buf).unwrap_or_else(default_cache_dir)
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
    let stage = match load_clip(args.clip_dir.as_deref())? {
        Some(clip) => {
            let cache = cache_dir(args.cache_dir.as_deref());
            let (set, status) = LabelSet::load_or_build(&clip, &labels, &TEMPLATES, &cache)?;
            match status {
                CacheStatus::Hit => {
                    eprintln!("label embeddings: cache hit ({} labels)", set.labels.len())
                }
                CacheStatus::Built => eprintln!(
                    "label embeddings: computed {} labels x {} prompts (cached for next run)",
                    set.labels.len(),
                    TEMPLATES.len()
                ),
            }
            Some(VisionStage::new(clip, set, args.top).without_embedding())
        }
        None => {
            eprintln!(
                "percept: {} (showing image facts only)",
                missing_weights_line()
            );
            None
        }
    };
    let opts = ImageOptions {
        gps_coordinates: args.gps,
        ..ImageOptions::default()
    };
    let mut failed = 0;
    for image in decode_each(&args.images, &opts, &mut failed) {
        let ctx = match &stage {
            Some(s) => s.describe(&image)?,
            None => facts_only(&image),
        };
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

pub(crate) fn facts_only(image: &DecodedImage) -> VisionContext {
    VisionContext {
        source: image.source.clone(),
        tags: Vec::new(),
        facts: image.facts.clone(),
        embedding: None,
    }
}

fn print_text(ctx: &VisionContext) {
    let f = &ctx.facts;
    println!("{}: {}x{} {}", ctx.source, f.width, f.height, f.format);
    for (k, v) in &f.extra {
        println!("  {k}: {v}");
    }
    if !ctx.tags.is_empty() {
        let tags: Vec<String> = ctx
            .tags
            .iter()
            .map(|t| format!("{} {:.3}", t.label, t.score))
            .collect();
        println!("  tags: {}", tags.join(", "));
    }
}
