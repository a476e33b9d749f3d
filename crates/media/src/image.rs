//! Image files to [`DecodedImage`] (RGB8, EXIF orientation applied) plus [`ImageFacts`].
//!
//! Every file is checked against [`ImageLimits`] twice before any pixel buffer exists:
//! the file size from metadata, then the dimensions from the format header. A tiny file
//! that claims 100,000 x 100,000 pixels is refused with [`ImageError::TooManyPixels`]
//! instead of asking the allocator for tens of gigabytes.
//!
//! A JPEG that stops before its end marker still decodes (the missing rows are filled in);
//! its facts then carry `truncated: true` ([`TRUNCATED_FACT`]) so nobody mistakes the
//! filled part for the picture.

use ::image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};
use percept_core::{DecodedImage, ImageFacts};
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use crate::{image_colours, image_content, image_exif, image_jpeg};

/// Key in [`ImageFacts::extra`], set to `"true"` when the file ends before the image data
/// does and the decoder filled in the rest.
pub const TRUNCATED_FACT: &str = "truncated";

/// Refusal thresholds; all are checked before decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    pub max_file_bytes: u64,
    pub max_width: u32,
    pub max_height: u32,
    pub max_pixels: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // 100 Mpx covers any camera today; the RGB8 buffer stays under 300 MB.
        ImageLimits {
            max_file_bytes: 256 << 20,
            max_width: 32_768,
            max_height: 32_768,
            max_pixels: 100_000_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageOptions {
    pub limits: ImageLimits,
    /// GPS coordinates are personal data: only reported when asked; otherwise the
    /// facts only say that the file carries them.
    pub gps_coordinates: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: file is {size} bytes, over the limit of {max} bytes")]
    FileTooLarge {
        source_name: String,
        size: u64,
        max: u64,
    },
    #[error("{source_name}: not a recognised image (supported: jpeg, png, webp, gif, bmp, tiff)")]
    NotAnImage { source_name: String },
    #[error("{source_name}: {width}x{height} exceeds the limit of {max_width}x{max_height} / {max_pixels} pixels")]
    TooManyPixels {
        source_name: String,
        width: u32,
        height: u32,
        max_width: u32,
        max_height: u32,
        max_pixels: u64,
    },
    #[error("{source_name}: image has zero width or height")]
    Empty { source_name: String },
    #[error("{source_name}: corrupt or truncated {format} image: {error}")]
    Corrupt {
        source_name: String,
        format: String,
        error: ::image::ImageError,
    },
}

/// Reads and decodes one image file.
pub fn decode_image_file(path: &Path, opts: &ImageOptions) -> Result<DecodedImage, ImageError> {
    let source_name = path.display().to_string();
    let read_err = |error| ImageError::Read {
        source_name: source_name.clone(),
        error,
    };
    let size = std::fs::metadata(path).map_err(read_err)?.len();
    check_file_size(&source_name, size, &opts.limits)?;
    let bytes = std::fs::read(path).map_err(read_err)?;
    decode_image_bytes(&source_name, &bytes, opts)
}

fn check_file_size(source_name: &str, size: u64, limits: &ImageLimits) -> Result<(), ImageError> {
    if size > limits.max_file_bytes {
        return Err(ImageError::FileTooLarge {
            source_name: source_name.to_string(),
            size,
            max: limits.max_file_bytes,
        });
    }
    Ok(())
}

/// Decodes an image held in memory; `source_name` is used in errors and the result.
pub fn decode_image_bytes(
    source_name: &str,
    bytes: &[u8],
    opts: &ImageOptions,
) -> Result<DecodedImage, ImageError> {
    check_file_size(source_name, bytes.len() as u64, &opts.limits)?;
    let format = sniff_format(source_name, bytes)?;
    let format_name = format_name(format);
    let corrupt = |error| ImageError::Corrupt {
        source_name: source_name.to_string(),
        format: format_name.to_string(),
        error,
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    // Header parsing is bounded by the file size check; our own dimension check below
    // gives a clearer error than the decoder's generic limit error.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(corrupt)?;
    let (width, height) = decoder.dimensions();
    check_dimensions(source_name, width, height, &opts.limits)?;

    let mut pixel_limits = Limits::default();
    pixel_limits.max_image_width = Some(opts.limits.max_width);
    pixel_limits.max_image_height = Some(opts.limits.max_height);
    // Largest layout a decoder produces is RGBA with 32-bit float samples.
    pixel_limits.max_alloc = Some(opts.limits.max_pixels.saturating_mul(16) + (1 << 20));
    decoder.set_limits(pixel_limits).map_err(corrupt)?;

    let colour_type = format!("{:?}", decoder.original_color_type()).to_lowercase();
    // EXIF problems never stop decoding: the pixels are still good.
    let exif = decoder
        .exif_metadata()
        .ok()
        .flatten()
        .and_then(|raw| image_exif::parse(raw, opts.gps_coordinates));
    let orientation = decoder.orientation().ok();

    let mut img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    if let Some(o) = orientation {
        img.apply_orientation(o);
    }
    let rgb = to_rgb8(img);
    let (width, height) = rgb.dimensions();

    let mut extra = BTreeMap::new();
    extra.insert("colour_type".to_string(), colour_type);
    if let Some(exif) = exif {
        extra.extend(exif);
    }
    if format == ImageFormat::Jpeg && image_jpeg::is_truncated(bytes) {
        extra.insert(TRUNCATED_FACT.to_string(), "true".to_string());
    }
    let colours = image_colours::dominant_colours(rgb.as_raw(), width, height);
    if !colours.is_empty() {
        extra.insert("colours".to_string(), image_colours::describe(&colours));
    }
    if let Some(what) = image_content::no_subject(rgb.as_raw(), width, height) {
        extra.insert(image_content::NO_SUBJECT_FACT.to_string(), what.to_string());
    }
    Ok(DecodedImage {
        source: source_name.to_string(),
        width,
        height,
        rgb: rgb.into_raw(),
        facts: ImageFacts {
            width,
            height,
            format: format_name.to_string(),
            extra,
        },
    })
}

/// Like Pillow's `convert("RGB")`: alpha is dropped (not blended), gray is replicated.
fn to_rgb8(img: DynamicImage) -> ::image::RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

fn check_dimensions(
    source_name: &str,
    width: u32,
    height: u32,
    limits: &ImageLimits,
) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::Empty {
            source_name: source_name.to_string(),
        });
    }
    if width > limits.max_width
        || height > limits.max_height
        || u64::from(width) * u64::from(height) > limits.max_pixels
    {
        return Err(ImageError::TooManyPixels {
            source_name: source_name.to_string(),
            width,
            height,
            max_width: limits.max_width,
            max_height: limits.max_height,
            max_pixels: limits.max_pixels,
        });
    }
    Ok(())
}

/// The format comes from the content, never the extension, so a text file named
/// `.jpg` is reported as "not an image" rather than a confusing JPEG error.
fn sniff_format(source_name: &str, bytes: &[u8]) -> Result<ImageFormat, ImageError> {
    let not_image = || ImageError::NotAnImage {
        source_name: source_name.to_string(),
    };
    let format = ::image::guess_format(bytes).map_err(|_| not_image())?;
    match format {
        ImageFormat::Jpeg
        | ImageFormat::Png
        | ImageFormat::WebP
        | ImageFormat::Gif
        | ImageFormat::Bmp
        | ImageFormat::Tiff => Ok(format),
        _ => Err(not_image()),
    }
}

fn format_name(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Png => "png",
        ImageFormat::WebP => "webp",
        ImageFormat::Gif => "gif",
        ImageFormat::Bmp => "bmp",
        ImageFormat::Tiff => "tiff",
        _ => "unknown",
    }
}

/// True when the file name looks like an image this module decodes (used to pick
/// files out of folders; decoding itself trusts only the content).
pub fn has_image_extension(path: &Path) -> bool {
    let Some(ext) = path.extension().and_then(|e| e.to_str()) else {
        return false;
    };
    matches!(
        ext.to_ascii_lowercase().as_str(),
        "jpg" | "jpeg" | "png" | "webp" | "gif" | "bmp" | "tif" | "tiff"
    )
}

#[cfg(test)]
#[path = "image_tests.rs"]
mod tests;
