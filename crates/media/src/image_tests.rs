use super::*;
use ::image::{ImageBuffer, Luma, Rgba};
use std::path::PathBuf;

fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

fn opts() -> ImageOptions {
    ImageOptions::default()
}

fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).expect("encode test image");
    out.into_inner()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
}

/// A 60-byte PNG whose header claims `w` x `h` RGB pixels.
fn bomb_png(w: u32, h: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut png, b"IHDR", &ihdr);
    // zlib stream of a few zero bytes: far too little data for the claimed size.
    png_chunk(
        &mut png,
        b"IDAT",
        &[0x78, 0x9c, 0x63, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01],
    );
    png_chunk(&mut png, b"IEND", &[]);
    png
}

#[test]
fn decompression_bomb_is_refused_from_the_header() {
    let png = bomb_png(100_000, 100_000);
    assert!(png.len() < 100);
    let err = decode_image_bytes("bomb.png", &png, &opts()).unwrap_err();
    assert!(
        matches!(err, ImageError::TooManyPixels { width: 100_000, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("bomb.png") && msg.contains("100000x100000"),
        "{msg}"
    );
}

#[test]
fn limits_are_configurable() {
    let img = DynamicImage::new_rgb8(64, 64);
    let png = encode(&img, ImageFormat::Png);
    let mut o = opts();
    o.limits.max_pixels = 1000;
    assert!(matches!(
        decode_image_bytes("x.png", &png, &o),
        Err(ImageError::TooManyPixels { .. })
    ));
    o = opts();
    o.limits.max_file_bytes = 10;
    assert!(matches!(
        decode_image_bytes("x.png", &png, &o),
        Err(ImageError::FileTooLarge { .. })
    ));
}

#[test]
fn truncated_png_names_the_file() {
    let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(64, 64, |x, y| {
        ::image::Rgb([x as u8 * 3, y as u8 * 3, 7])
    }));
    let png = encode(&img, ImageFormat::Png);
    let err = decode_image_bytes("cut.png", &png[..png.len() / 2], &opts()).unwrap_err();
    assert!(matches!(err, ImageError::Corrupt { .. }), "{err}");
    assert!(err.to_string().starts_with("cut.png: "), "{err}");
}

#[test]
fn truncated_jpeg_file_errors_or_decodes_without_panic() {
    let bytes = std::fs::read(repo_path("assets/images/rocket.jpg")).expect("assets/images");
    for cut in [20, 200, bytes.len() / 3] {
        // JPEG decoders may fill a missing tail with gray; then the facts say so.
        match decode_image_bytes("rocket-cut.jpg", &bytes[..cut], &opts()) {
            Err(e) => assert!(e.to_string().contains("rocket-cut.jpg"), "{e}"),
            Ok(d) => assert_eq!(d.facts.extra[TRUNCATED_FACT], "true", "cut at {cut}"),
        }
    }
}

#[test]
fn truncated_jpeg_decodes_with_a_truncated_fact() {
    let bytes = std::fs::read(repo_path("assets/images/rocket.jpg")).expect("assets/images");
    let cut = decode_image_bytes("cut.jpg", &bytes[..bytes.len() / 2], &opts())
        .expect("the lenient decoder keeps the top half");
    assert_eq!((cut.width, cut.height), (640, 427));
    assert_eq!(
        cut.facts.extra.get(TRUNCATED_FACT).map(String::as_str),
        Some("true")
    );
    assert!(percept_core::describe_image(&cut.facts, &[], &[]).contains("truncated: true"));
    let whole = decode_image_bytes("whole.jpg", &bytes, &opts()).unwrap();
    assert!(!whole.facts.extra.contains_key(TRUNCATED_FACT));
    // Bytes after the end marker are not truncation.
    let mut tail = bytes.clone();
    tail.extend_from_slice(&[0u8; 100]);
    let d = decode_image_bytes("tail.jpg", &tail, &opts()).unwrap();
    assert!(!d.facts.extra.contains_key(TRUNCATED_FACT));
    // Encoded here (no EXIF, baseline) as well as by a camera.
    let img = DynamicImage::new_rgb8(32, 32);
    let jpg = encode(&img, ImageFormat::Jpeg);
    let d = decode_image_bytes("x.jpg", &jpg[..jpg.len() - 2], &opts()).unwrap();
    assert_eq!(d.facts.extra[TRUNCATED_FACT], "true");
}

#[test]
fn text_file_named_jpg_is_not_an_image() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.jpg");
    std::fs::write(&path, "just some text, not a picture\n").unwrap();
    let err = decode_image_file(&path, &opts()).unwrap_err();
    assert!(matches!(err, ImageError::NotAnImage { .. }));
    assert!(err.to_string().contains("notes.jpg"), "{err}");
}

#[test]
fn missing_file_names_the_file() {
    let err = decode_image_file(Path::new("/nonexistent/x.png"), &opts()).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/x.png"), "{err}");
}

#[test]
fn one_pixel_rgba_drops_alpha_like_pillow() {
    let img = DynamicImage::ImageRgba8(ImageBuffer::from_pixel(1, 1, Rgba([10, 20, 30, 0])));
    let d = decode_image_bytes("a.png", &encode(&img, ImageFormat::Png), &opts()).unwrap();
    assert_eq!((d.width, d.height, d.rgb.clone()), (1, 1, vec![10, 20, 30]));
    assert_eq!(d.facts.extra["colour_type"], "rgba8");
}

#[test]
fn very_wide_image_decodes() {
    let img = DynamicImage::new_rgb8(4000, 1);
    let d = decode_image_bytes("wide.png", &encode(&img, ImageFormat::Png), &opts()).unwrap();
    assert_eq!((d.width, d.height, d.rgb.len()), (4000, 1, 12000));
    assert_eq!(d.facts.extra["colours"], "black 100%");
}

#[test]
fn sixteen_bit_gray_scales_to_eight_bits() {
    let img = DynamicImage::ImageLuma16(ImageBuffer::from_fn(4, 2, |x, _| {
        Luma([if x < 2 { 0xFFFF } else { 0x8080 }])
    }));
    let d = decode_image_bytes("g16.png", &encode(&img, ImageFormat::Png), &opts()).unwrap();
    assert_eq!(&d.rgb[..3], &[255, 255, 255]);
    assert_eq!(&d.rgb[6..9], &[128, 128, 128]);
    assert_eq!(d.facts.format, "png");
}

#[test]
fn every_supported_encoding_round_trips() {
    let img = DynamicImage::ImageRgb8(ImageBuffer::from_fn(16, 8, |x, y| {
        ::image::Rgb([x as u8 * 16, y as u8 * 32, 200])
    }));
    for (format, name) in [
        (ImageFormat::Png, "png"),
        (ImageFormat::Bmp, "bmp"),
        (ImageFormat::Tiff, "tiff"),
        (ImageFormat::Gif, "gif"),
        (ImageFormat::WebP, "webp"),
        (ImageFormat::Jpeg, "jpeg"),
    ] {
        let d = decode_image_bytes(name, &encode(&img, format), &opts())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!((d.width, d.height, d.facts.format.as_str()), (16, 8, name));
        if matches!(
            format,
            ImageFormat::Png | ImageFormat::Bmp | ImageFormat::Tiff
        ) {
            assert_eq!(d.rgb, img.to_rgb8().into_raw(), "{name} is lossless");
        }
    }
}

#[test]
fn sample_images_decode_with_their_sizes() {
    for (name, w, h) in [
        ("chelsea.png", 451, 300),
        ("coffee.png", 600, 400),
        ("astronaut.png", 512, 512),
        ("rocket.jpg", 640, 427),
        ("horse.png", 400, 328),
    ] {
        let path = repo_path(&format!("assets/images/{name}"));
        let d = decode_image_file(&path, &opts()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((d.width, d.height), (w, h), "{name}");
        assert_eq!(d.rgb.len(), (w * h * 3) as usize);
        assert!(d.facts.extra.contains_key("colours"), "{name}");
    }
}

/// Files written by scripts/fixtures/clip_reference.py with Pillow: formats the
/// `image` crate cannot encode itself, and EXIF.
#[test]
fn pillow_written_formats_decode() {
    let dir = repo_path("tests/fixtures/clip/formats");
    let expect: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.json")).expect("formats/expected.json"),
    )
    .unwrap();
    let files = expect.as_object().unwrap();
    assert!(files.len() >= 5);
    for (file, want) in files {
        let mut o = opts();
        o.gps_coordinates = want.get("gps_coordinates").is_some();
        let d = decode_image_file(&dir.join(file), &o).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(d.width as u64, want["width"].as_u64().unwrap(), "{file}");
        assert_eq!(d.height as u64, want["height"].as_u64().unwrap(), "{file}");
        // Mean colour after Pillow's convert("RGB") (and exif_transpose).
        let mean = |c: usize| {
            d.rgb
                .iter()
                .skip(c)
                .step_by(3)
                .map(|&v| f64::from(v))
                .sum::<f64>()
                / f64::from(d.width * d.height)
        };
        for (c, want_c) in want["mean_rgb"].as_array().unwrap().iter().enumerate() {
            let diff = (mean(c) - want_c.as_f64().unwrap()).abs();
            // JPEG decoders differ by IDCT rounding; everything else is exact.
            let tol = if d.facts.format == "jpeg" { 3.0 } else { 0.01 };
            assert!(diff <= tol, "{file} channel {c}: {} vs {want_c}", mean(c));
        }
        assert!(!d.facts.extra.contains_key(TRUNCATED_FACT), "{file}");
        if let Some(facts) = want.get("facts").and_then(|f| f.as_object()) {
            for (k, v) in facts {
                assert_eq!(
                    d.facts.extra.get(k).map(String::as_str),
                    v.as_str(),
                    "{file} {k}"
                );
            }
        }
    }
}
