//! Dominant colours in plain words ("white, blue, gray"), from a pixel sample.

/// Colours covering at least this share of the sampled pixels are reported.
const MIN_SHARE: f32 = 0.10;
const MAX_COLOURS: usize = 3;
/// About this many pixels are classified, whatever the image size.
const SAMPLE_TARGET: u64 = 16_384;

const NAMES: [&str; 12] = [
    "black", "white", "gray", "red", "orange", "brown", "yellow", "green", "cyan", "blue",
    "purple", "pink",
];

/// (name, share) of the most common named colours, largest first.
pub(crate) fn dominant_colours(rgb: &[u8], width: u32, height: u32) -> Vec<(&'static str, f32)> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels == 0 || rgb.len() < (pixels as usize) * 3 {
        return Vec::new();
    }
    // A square stride grid keeps the sample spread over the whole image.
    let stride = ((pixels as f64 / SAMPLE_TARGET as f64).sqrt().floor() as u32).max(1);
    let mut counts = [0u32; NAMES.len()];
    let mut total = 0u32;
    for y in (0..height).step_by(stride as usize) {
        for x in (0..width).step_by(stride as usize) {
            let i = ((u64::from(y) * u64::from(width) + u64::from(x)) * 3) as usize;
            counts[classify(rgb[i], rgb[i + 1], rgb[i + 2])] += 1;
            total += 1;
        }
    }
    let mut ranked: Vec<(&'static str, f32)> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| (NAMES[i], c as f32 / total.max(1) as f32))
        .filter(|&(_, share)| share >= MIN_SHARE)
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
    ranked.truncate(MAX_COLOURS);
    ranked
}

/// "white 45%, black 30%"
pub(crate) fn describe(colours: &[(&str, f32)]) -> String {
    colours
        .iter()
        .map(|(name, share)| format!("{name} {:.0}%", share * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Index into [`NAMES`]; hue/saturation/value bins tuned by eye on photos.
fn classify(r: u8, g: u8, b: u8) -> usize {
    let (r, g, b) = (f32::from(r), f32::from(g), f32::from(b));
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let chroma = max - min;
    if max < 45.0 {
        return 0; // black
    }
    if chroma < 28.0 || chroma / max < 0.15 {
        return if max > 205.0 { 1 } else { 2 }; // white / gray
    }
    let hue = if max == r {
        60.0 * (((g - b) / chroma).rem_euclid(6.0))
    } else if max == g {
        60.0 * ((b - r) / chroma + 2.0)
    } else {
        60.0 * ((r - g) / chroma + 4.0)
    };
    let light_and_pale = max > 200.0 && chroma / max < 0.45;
    match hue {
        h if !(15.0..345.0).contains(&h) => {
            if light_and_pale {
                11 // pink
            } else if max < 140.0 {
                5 // brown
            } else {
                3 // red
            }
        }
        h if h < 45.0 => {
            if max < 170.0 {
                5
            } else {
                4
            }
        }
        h if h < 70.0 => {
            if max < 130.0 {
                5
            } else {
                6
            }
        }
        h if h < 165.0 => 7,
        h if h < 195.0 => 8,
        h if h < 260.0 => 9,
        h if h < 290.0 => 10,
        _ => 11,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_colours_get_plain_names() {
        let name = |r, g, b| NAMES[classify(r, g, b)];
        assert_eq!(name(0, 0, 0), "black");
        assert_eq!(name(255, 255, 255), "white");
        assert_eq!(name(128, 128, 128), "gray");
        assert_eq!(name(220, 20, 20), "red");
        assert_eq!(name(250, 140, 0), "orange");
        assert_eq!(name(120, 70, 30), "brown");
        assert_eq!(name(240, 230, 30), "yellow");
        assert_eq!(name(30, 180, 40), "green");
        assert_eq!(name(20, 60, 220), "blue");
        assert_eq!(name(130, 30, 200), "purple");
        assert_eq!(name(250, 170, 190), "pink");
    }

    #[test]
    fn two_tone_image_reports_both_largest_first() {
        // 10x10: 7 rows blue, 3 rows white.
        let mut rgb = Vec::new();
        for y in 0..10 {
            for _ in 0..10 {
                rgb.extend_from_slice(if y < 7 {
                    &[20, 60, 220]
                } else {
                    &[255, 255, 255]
                });
            }
        }
        let c = dominant_colours(&rgb, 10, 10);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].0, "blue");
        assert_eq!(c[1].0, "white");
        assert_eq!(describe(&c), "blue 70%, white 30%");
    }
}
