//! Scalar math written as straight-line arithmetic, so loops over it vectorise.

/// `e^x` (Cephes' `expf` polynomial), relative error about 2e-7. Inputs are clamped to
/// [-87, 88] so the exponent bits stay normal: the ends give ~1.6e-38 and ~1.7e38.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + 0.5).floor();
    let r = x - n * 0.693_359_4 - n * -2.121_944_4e-4;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 0.166_666_65;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // `n` is a whole number in [-126, 127]: adding 1.5 * 2^23 puts it in the low mantissa
    // bits, read out without a float-to-int cast (whose saturating checks Rust does not
    // vectorise).
    let i = (n + 12_582_912.0).to_bits().wrapping_sub(0x4b40_0000);
    y * f32::from_bits(i.wrapping_add(127) << 23)
}

/// The error function (Abramowitz and Stegun 7.1.26), absolute error under 6e-7 in f32.
#[inline(always)]
pub(crate) fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let p = ((((1.061_405_4 * t - 1.453_152) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    (1.0 - p * exp(-a * a)).copysign(x)
}

/// Dot product with eight independent accumulators (a sum in order would not vectorise).
#[inline(always)]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Sum with eight independent accumulators.
#[inline(always)]
pub(crate) fn sum(a: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let c = a.chunks_exact(8);
    let tail: f32 = c.remainder().iter().sum();
    for x in c {
        for i in 0..8 {
            acc[i] += x[i];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// Maximum with eight independent lanes.
#[inline(always)]
pub(crate) fn max(a: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let c = a.chunks_exact(8);
    let tail = c
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    for x in c {
        for i in 0..8 {
            acc[i] = if x[i] > acc[i] { x[i] } else { acc[i] };
        }
    }
    acc.iter().copied().fold(tail, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm() {
        let mut x = -87.0f32;
        while x < 88.0 {
            let (a, b) = (exp(x), x.exp());
            assert!(((a - b) / b).abs() < 5e-7, "exp({x}) = {a}, libm {b}");
            x += 0.0137;
        }
        assert!((0.0..1e-37).contains(&exp(-1000.0)));
        assert!(exp(1000.0).is_finite());
    }

    #[test]
    fn erf_matches_the_series() {
        // erf by its Taylor series in f64, accurate for |x| <= 3 with enough terms.
        let series = |x: f64| {
            let (mut term, mut total) = (x, x);
            for n in 1..200 {
                term *= -x * x / n as f64;
                total += term / (2 * n + 1) as f64;
            }
            total * 2.0 / std::f64::consts::PI.sqrt()
        };
        let mut x = -3.0f32;
        while x <= 3.0 {
            let e = (erf(x) as f64 - series(x as f64)).abs();
            assert!(e < 6e-7, "erf({x}) off by {e}");
            x += 0.01;
        }
        assert_eq!(erf(10.0), 1.0);
        assert_eq!(erf(-10.0), -1.0);
    }

    #[test]
    fn reductions_match_plain_loops() {
        let a: Vec<f32> = (0..1003)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0)
            .collect();
        let b: Vec<f32> = (0..1003).map(|i| ((i * 11 % 13) as f32) / 3.0).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| (x * y) as f64).sum();
        assert!((dot(&a, &b) as f64 - plain).abs() < 1e-2);
        assert!((sum(&a) as f64 - a.iter().map(|&x| x as f64).sum::<f64>()).abs() < 1e-3);
        assert_eq!(max(&a), a.iter().copied().fold(f32::MIN, f32::max));
        assert_eq!(
            max(&a[..5]),
            a[..5].iter().copied().fold(f32::MIN, f32::max)
        );
    }
}
