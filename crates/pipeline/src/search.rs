//! `percept search`: a folder's images ranked by CLIP similarity to words or to an example
//! image, through an embedding index kept in the cache and brought up to date on each search.

use crate::error::Result;
use percept_clip::cache::default_cache_dir;
use percept_clip::index::{SearchIndex, UpdateReport};
use percept_clip::Clip;
use percept_media::image::{decode_image_file, ImageOptions};
use std::path::{Path, PathBuf};

/// What to look for.
#[derive(Debug, Clone, Copy)]
pub enum Query<'a> {
    Words(&'a str),
    LikeImage(&'a Path),
}

/// The best matches, and what bringing the index up to date did.
#[derive(Debug, Clone)]
pub struct Found {
    /// Paths under the folder searched, best first, with their cosine similarity.
    pub hits: Vec<(PathBuf, f32)>,
    pub update: UpdateReport,
    /// Images in the index after the update.
    pub indexed: usize,
}

/// Updates the index of `dir` (in `cache_dir`, default `$PERCEPT_CACHE_DIR` or
/// `~/.cache/percept`) and returns the `top` images closest to `query`.
pub fn search_folder(
    clip: &Clip,
    dir: &Path,
    cache_dir: Option<&Path>,
    query: Query,
    top: usize,
) -> Result<Found> {
    if !dir.is_dir() {
        return Err(crate::PipelineError::invalid(format!(
            "{}: not a folder",
            dir.display()
        )));
    }
    let opts = ImageOptions::default();
    let cache = cache_dir.map_or_else(default_cache_dir, Path::to_path_buf);
    let index_path = SearchIndex::path_for(&cache, dir, clip)?;
    let mut index = SearchIndex::load(&index_path, clip);
    let update = index.update(dir, clip, &opts)?;
    index.save(&index_path)?;
    let wanted = match query {
        Query::LikeImage(path) => {
            let img = decode_image_file(path, &opts)?;
            clip.embed_images(&[&img])?.pop().unwrap_or_default()
        }
        Query::Words(text) => clip.embed_texts(&[text], true)?.pop().unwrap_or_default(),
    };
    let hits = index
        .search(&wanted, top)
        .into_iter()
        .map(|(path, score)| (dir.join(path), score))
        .collect();
    Ok(Found {
        hits,
        update,
        indexed: index.len(),
    })
}
