//! Pictures that show nothing: one flat colour, or random noise. An image classifier still
//! names its likeliest class for them (noise comes out as "kite"), so the facts say plainly
//! that there is no subject, and the description holds back the classifier's guesses.

pub use percept_core::NO_SUBJECT_FACT;

/// Pixels sampled at most, so a large photo costs the same as a small one.
const SAMPLES: usize = 64 * 1024;

/// `Some("a single flat colour")` or `Some("random noise")` when the pixels carry no picture.
///
/// Flat: the luminance barely varies. Noise: it varies, but a pixel says almost nothing
/// about its right-hand neighbour (photos, drawings and text correlate above 0.5).
pub(crate) fn no_subject(rgb: &[u8], width: u32, height: u32) -> Option<&'static str> {
    let (w, h) = (width as usize, height as usize);
    if w < 2 || h == 0 || rgb.len() < w * h * 3 {
        return None;
    }
    let luma = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        0.299 * rgb[i] as f64 + 0.587 * rgb[i + 1] as f64 + 0.114 * rgb[i + 2] as f64
    };
    let pairs_per_row = (w - 1).min(256);
    let rows = (SAMPLES / pairs_per_row).clamp(1, h);
    let (xs, ys) = ((w - 1) / pairs_per_row, h / rows);
    let (mut n, mut sa, mut sb, mut saa, mut sbb, mut sab) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for r in 0..rows {
        let y = r * ys.max(1);
        for p in 0..pairs_per_row {
            let x = p * xs.max(1);
            let (a, b) = (luma(x, y), luma(x + 1, y));
            n += 1.0;
            sa += a;
            sb += b;
            saa += a * a;
            sbb += b * b;
            sab += a * b;
        }
    }
    let var_a = saa / n - (sa / n).powi(2);
    let var_b = sbb / n - (sb / n).powi(2);
    if var_a.max(0.0).sqrt() < 2.0 {
        return Some("a single flat colour");
    }
    let corr = (sab / n - (sa / n) * (sb / n)) / (var_a * var_b).max(1e-9).sqrt();
    (corr < 0.3).then_some("random noise")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u8 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (*seed >> 56) as u8
    }

    #[test]
    fn flat_noise_and_a_gradient() {
        let flat = vec![128u8; 64 * 64 * 3];
        assert_eq!(no_subject(&flat, 64, 64), Some("a single flat colour"));
        let mut seed = 7;
        let noise: Vec<u8> = (0..64 * 64 * 3).map(|_| lcg(&mut seed)).collect();
        assert_eq!(no_subject(&noise, 64, 64), Some("random noise"));
        let ramp: Vec<u8> = (0..64 * 64).flat_map(|i| [(i % 64 * 4) as u8; 3]).collect();
        assert_eq!(no_subject(&ramp, 64, 64), None);
        assert_eq!(no_subject(&[], 0, 0), None);
    }
}
