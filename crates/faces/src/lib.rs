//! Human faces in a picture, found with a Haar cascade as OpenCV's `CascadeClassifier`
//! finds them: the same cascade files (Debian's `opencv-data`), the same variance
//! normalisation, image pyramid, window step and grouping of neighbouring hits.
//!
//! The ImageNet classifier has no class for a person, so without this a portrait is
//! described as whatever the person wears ("football helmet").
//!
//! - [`cascade`]: the XML cascade (stages of boosted trees over Haar features).
//! - [`detect`]: the sliding-window search and the grouping of its hits.

pub mod cascade;
pub mod detect;

pub use cascade::{Cascade, CascadeError};
pub use detect::{detect, group, to_gray, Face, Gray, Params};

use std::path::PathBuf;

/// Where Debian's `opencv-data` puts the frontal-face cascade.
pub const SYSTEM_CASCADE: &str =
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";

/// Environment variable naming another cascade file.
pub const CASCADE_ENV: &str = "PERCEPT_FACE_CASCADE";

/// The cascade file to use: `$PERCEPT_FACE_CASCADE`, else Debian's.
pub fn cascade_path() -> PathBuf {
    std::env::var_os(CASCADE_ENV).map_or_else(|| PathBuf::from(SYSTEM_CASCADE), PathBuf::from)
}

/// The frontal-face detector from [`cascade_path`]; the error is the one line that says face
/// detection is off and why.
pub fn load() -> Result<Cascade, CascadeError> {
    let path = cascade_path();
    if !path.is_file() {
        return Err(CascadeError::Missing {
            path: path.display().to_string(),
        });
    }
    Cascade::load(&path)
}

/// Who `n` faces are, for the picture's `people` fact (none when there are none).
pub fn describe_faces(n: usize) -> Option<String> {
    match n {
        0 => None,
        1 => Some("a person (1 human face)".into()),
        n => Some(format!("{n} people ({n} human faces)")),
    }
}
