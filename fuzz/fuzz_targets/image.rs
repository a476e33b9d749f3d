//! Image decode + EXIF + preprocessing: any bytes as an uploaded image, decoded with
//! limits (header checked before pixels), EXIF orientation and facts, then the CLIP and
//! ImageNet-classifier preprocessing every decoded image goes through.
#![no_main]

use libfuzzer_sys::fuzz_target;
use percept_media::image::{decode_image_bytes, ImageLimits, ImageOptions};

fuzz_target!(|data: &[u8]| {
    // Smaller pixel limits than the default 100 Mpx keep one execution fast; the code that
    // enforces them is the same.
    let opts = ImageOptions {
        limits: ImageLimits {
            max_file_bytes: 1 << 20,
            max_width: 4096,
            max_height: 4096,
            max_pixels: 4_000_000,
        },
        gps_coordinates: true,
    };
    let Ok(img) = decode_image_bytes("fuzz", data, &opts) else {
        return;
    };
    let (w, h) = (img.width, img.height);
    assert!(w > 0 && h > 0);
    assert_eq!(img.rgb.len(), w as usize * h as usize * 3);
    assert!(u64::from(w) * u64::from(h) <= opts.limits.max_pixels);
    let _ = serde_json::to_string(&img.facts);

    let clip = percept_clip::PreprocessConfig::default();
    let px = percept_clip::preprocess::pixel_values(&img.rgb, w, h, &clip);
    assert_eq!(px.len(), 3 * (clip.crop_width * clip.crop_height) as usize);

    let cfg = percept_classify::PreprocessConfig::lite();
    let crop = percept_classify::preprocess::resize_and_crop(&img.rgb, w, h, &cfg);
    let px = percept_classify::preprocess::normalize(&crop, &cfg);
    assert_eq!(px.len(), 3 * (cfg.crop * cfg.crop) as usize);
});
