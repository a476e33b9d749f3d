use super::*;
use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use half::f16;

fn ggml(f: Format) -> GgmlDType {
    match f {
        Format::Q4_0 => GgmlDType::Q4_0,
        Format::Q4_1 => GgmlDType::Q4_1,
        Format::Q5_0 => GgmlDType::Q5_0,
        Format::Q5_1 => GgmlDType::Q5_1,
        Format::Q8_0 => GgmlDType::Q8_0,
        Format::Q4K => GgmlDType::Q4K,
        Format::Q5K => GgmlDType::Q5K,
        Format::Q6K => GgmlDType::Q6K,
    }
}

/// A deterministic generator (xorshift), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn values(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.unit()).collect()
    }
}

/// Weights quantised by candle: the bytes, and candle's own dequantisation of them.
fn candle_matrix(f: Format, rows: usize, cols: usize, rng: &mut Rng) -> (QMatrix, QTensor) {
    let w = Tensor::from_vec(rng.values(rows * cols), (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&w, ggml(f)).unwrap();
    let bytes = q.data().unwrap().into_owned();
    (QMatrix::new("w", f, rows, cols, bytes).unwrap(), q)
}

/// Blocks of random bytes whose scale fields hold small finite numbers: every bit pattern of
/// the quants, high bits and packed scales occurs.
fn random_matrix(f: Format, rows: usize, cols: usize, rng: &mut Rng) -> QMatrix {
    let mut data: Vec<u8> = (0..rows * cols / f.block_len() * f.block_bytes())
        .map(|_| rng.next() as u8)
        .collect();
    let scale_fields: &[usize] = match f {
        Format::Q4_0 | Format::Q5_0 | Format::Q8_0 => &[0],
        Format::Q6K => &[208],
        _ => &[0, 2],
    };
    for block in data.chunks_exact_mut(f.block_bytes()) {
        for &at in scale_fields {
            let v = f16::from_f32(rng.unit() * 0.05).to_le_bytes();
            block[at..at + 2].copy_from_slice(&v);
        }
    }
    QMatrix::new("w", f, rows, cols, data).unwrap()
}

fn close(a: &[f32], b: &[f32], tol: f32, what: &str) {
    assert_eq!(a.len(), b.len(), "{what}");
    let scale = b.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * scale,
            "{what} [{i}]: {x} vs {y} (scale {scale})"
        );
    }
}

#[test]
fn dequantisation_matches_candles_for_every_format() {
    let mut rng = Rng(7);
    for f in Format::ALL {
        let (m, q) = candle_matrix(f, 3, 512, &mut rng);
        let theirs = q.dequantize(&Device::Cpu).unwrap().flatten_all().unwrap();
        let theirs = theirs.to_vec1::<f32>().unwrap();
        let mut ours = vec![0f32; 512 * 3];
        for r in 0..3 {
            m.dequantize_row(r, &mut ours[512 * r..512 * (r + 1)])
                .unwrap();
        }
        close(&ours, &theirs, 1e-6, &format!("{f:?}"));
    }
}

#[test]
fn products_match_candles_quantised_matmul() {
    let mut rng = Rng(11);
    for f in Format::ALL {
        let (m, q) = candle_matrix(f, 37, 768, &mut rng);
        let theirs = QMatMul::from_qtensor(q).unwrap();
        for t_rows in [1, 3] {
            let x = rng.values(t_rows * 768);
            let xt = Tensor::from_vec(x.clone(), (t_rows, 768), &Device::Cpu).unwrap();
            let want = theirs.forward(&xt).unwrap().flatten_all().unwrap();
            let want = want.to_vec1::<f32>().unwrap();
            for k in [Kernels::Scalar, kernels()] {
                let mut got = vec![0f32; t_rows * 37];
                m.matmul_with(k, &QInput::new(&x, 768), &mut got, None)
                    .unwrap();
                close(&got, &want, 2e-3, &format!("{f:?} {k:?} x{t_rows}"));
            }
        }
    }
}

#[test]
fn products_track_the_float_product() {
    let mut rng = Rng(3);
    for f in Format::ALL {
        let (m, _) = candle_matrix(f, 5, 512, &mut rng);
        let x = rng.values(512);
        let mut got = vec![0f32; 5];
        m.matmul_with(Kernels::Scalar, &QInput::new(&x, 512), &mut got, None)
            .unwrap();
        let mut w = vec![0f32; 512];
        for (r, g) in got.iter().enumerate() {
            m.dequantize_row(r, &mut w).unwrap();
            let exact: f32 = w.iter().zip(&x).map(|(a, b)| a * b).sum();
            let size: f32 = w.iter().zip(&x).map(|(a, b)| (a * b).abs()).sum();
            assert!(
                (g - exact).abs() < 0.02 * size,
                "{f:?} row {r}: {g} vs {exact}"
            );
        }
    }
}

#[test]
fn simd_matches_scalar_on_every_bit_pattern_and_odd_shapes() {
    // The AVX2 tiles (both builds: `Avx512` runs them compiled for 32 registers below the
    // prompt kernel's row count) and NEON compute what the scalar code does; the AVX-512
    // prompt kernel quantises k-quant activations per 32 and has its own test below.
    let simds = match kernels() {
        Kernels::Avx512 => vec![Kernels::Avx2, Kernels::Avx512],
        Kernels::Avx2 => vec![Kernels::Avx2],
        Kernels::Neon => vec![Kernels::Neon],
        Kernels::Scalar => vec![],
    };
    if simds.is_empty() {
        eprintln!("no SIMD kernels on this CPU (or PERCEPT_KERNELS=scalar): nothing to compare");
        return;
    }
    let mut rng = Rng(5);
    for simd in simds {
        for f in Format::ALL {
            for (rows, blocks) in [(1, 1), (7, 3), (33, 5), (2, 1)] {
                let cols = blocks * f.block_len();
                let m = random_matrix(f, rows, cols, &mut rng);
                for t_rows in [1, 2, 5, 9] {
                    if simd == Kernels::Avx512 && t_rows >= PROMPT_ROWS {
                        continue;
                    }
                    // Values up to 50 in size, and a row of zeros.
                    let mut x: Vec<f32> =
                        rng.values(t_rows * cols).iter().map(|v| v * 50.0).collect();
                    x[..cols].fill(0.0);
                    let input = QInput::new(&x, cols);
                    let (mut a, mut b) = (vec![0f32; t_rows * rows], vec![0f32; t_rows * rows]);
                    m.matmul_with(Kernels::Scalar, &input, &mut a, None)
                        .unwrap();
                    m.matmul_with(simd, &input, &mut b, None).unwrap();
                    let what = format!("{simd:?} {f:?} {rows}x{cols} x{t_rows}");
                    close(&b, &a, 1e-5, &what);
                    assert!(a[..rows].iter().all(|&v| v == 0.0));
                }
            }
        }
    }
}

#[test]
fn many_products_match_one_at_a_time() {
    let mut rng = Rng(9);
    let mats: Vec<QMatrix> = [(Format::Q4_1, 37), (Format::Q4K, 8), (Format::Q8_0, 129)]
        .iter()
        .map(|&(f, rows)| random_matrix(f, rows, 512, &mut rng))
        .collect();
    for t_rows in [1, 3] {
        let input = QInput::new(&rng.values(t_rows * 512), 512);
        let mut outs: Vec<Vec<f32>> = mats.iter().map(|m| vec![0.0; t_rows * m.rows()]).collect();
        let mut pairs: Vec<(&QMatrix, &mut [f32])> = mats
            .iter()
            .zip(outs.iter_mut())
            .map(|(m, o)| (m, o.as_mut_slice()))
            .collect();
        matmul_many(&input, &mut pairs).unwrap();
        for (m, got) in mats.iter().zip(&outs) {
            let mut want = vec![0f32; got.len()];
            m.matmul(&input, &mut want).unwrap();
            assert_eq!(got, &want, "{:?} x{t_rows}", m.format());
        }
    }
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    assert!(matches!(
        QMatrix::new("t", Format::Q4K, 2, 100, vec![0; 10]),
        Err(QuantError::Columns { .. })
    ));
    assert!(matches!(
        QMatrix::new("t", Format::Q8_0, 2, 32, vec![0; 67]),
        Err(QuantError::Size { .. })
    ));
    let m = QMatrix::new("t", Format::Q8_0, 2, 32, vec![0; 68]).unwrap();
    let mut out = [0f32; 2];
    assert!(matches!(
        m.matmul(&QInput::new(&[0.0; 64], 64), &mut out),
        Err(QuantError::Input { .. })
    ));
    assert!(m.matmul(&QInput::new(&[0.0; 64], 32), &mut out).is_err());
    assert!(m.dequantize_row(2, &mut [0.0; 32]).is_err());
}

#[test]
fn prompt_kernel_matches_the_dequantised_product() {
    if kernels() != Kernels::Avx512 {
        eprintln!("no AVX-512 VNNI on this CPU (or forced off): nothing to compare");
        return;
    }
    let mut rng = Rng(13);
    for f in Format::ALL {
        // Odd numbers of 32-blocks take the kernel's masked tail.
        for (rows, blocks) in [(1, 1), (7, 3), (33, 5), (6, 2)] {
            let cols = blocks * f.block_len();
            let m = random_matrix(f, rows, cols, &mut rng);
            for t_rows in [4, 5, 9] {
                let mut x: Vec<f32> = rng.values(t_rows * cols).iter().map(|v| v * 50.0).collect();
                x[..cols].fill(0.0);
                let input = QInput::new(&x, cols);
                let mut got = vec![0f32; t_rows * rows];
                m.matmul_with(Kernels::Avx512, &input, &mut got, None)
                    .unwrap();
                // The weights as floats against the activations as quantised per 32.
                let mut want = vec![0f32; t_rows * rows];
                let mut w = vec![0f32; cols];
                for r in 0..rows {
                    m.dequantize_row(r, &mut w).unwrap();
                    for t in 0..t_rows {
                        let a = input.row32(t);
                        let s: f64 = (0..cols)
                            .map(|j| w[j] as f64 * a.d[j / 32] as f64 * a.q[j] as f64)
                            .sum();
                        want[t * rows + r] = s as f32;
                    }
                }
                close(&got, &want, 1e-5, &format!("{f:?} {rows}x{cols} x{t_rows}"));
                assert!(got[..rows].iter().all(|&v| v == 0.0));
            }
        }
    }
}

#[test]
fn packed_k_scales_unpack_at_once_as_one_by_one() {
    let mut rng = Rng(17);
    for _ in 0..1000 {
        let q: Vec<u8> = (0..12).map(|_| rng.next() as u8).collect();
        let (scales, mins) = format::scales_mins_k4(&q);
        for j in 0..8 {
            assert_eq!(
                (scales[j], mins[j]),
                format::scale_min_k4(j, &q),
                "{q:?} {j}"
            );
        }
    }
}

/// Every compilation of the AVX2 tiles this CPU runs (see `avx2::Build`), called directly,
/// against the scalar products: four rows by one token, and two or one rows by four tokens.
#[cfg(target_arch = "x86_64")]
#[test]
fn every_build_of_the_tiles_matches_scalar() {
    use super::avx2::{tiles256, tiles32, Build};
    if !kernels().has_avx2() {
        eprintln!("no AVX2 on this CPU (or PERCEPT_KERNELS=scalar): nothing to compare");
        return;
    }
    let mut builds = vec![Build::Avx2];
    if avx512::available() {
        builds.push(Build::Avx512);
        if is_x86_feature_detected!("avx512fp16") {
            builds.push(Build::Avx512Fp16);
        }
    }
    let mut rng = Rng(11);
    for build in builds {
        for f in Format::ALL {
            let cols = 3 * f.block_len();
            let m = random_matrix(f, 4, cols, &mut rng);
            let rows: [&[u8]; 4] = std::array::from_fn(|r| m.row(r));
            let x: Vec<f32> = rng.values(4 * cols).iter().map(|v| v * 50.0).collect();
            let input = QInput::new(&x, cols);
            let what = format!("{build:?} {f:?}");
            // SAFETY: the CPU has the build's features (checked above); every row and input
            // holds `cols` values.
            let (by_rows, by_tokens): ([f32; 4], [[f32; 4]; 2]) = unsafe {
                if f.is_k() {
                    let k = tiles256(f, build);
                    let a: [_; 4] = std::array::from_fn(|t| input.row256(t));
                    let t0 = (k.tokens)([rows[0]], a)[0];
                    let t1 = (k.tokens)([rows[1]], a)[0];
                    ((k.rows)(rows, [a[0]]).map(|v| v[0]), [t0, t1])
                } else {
                    let k = tiles32(f, build);
                    let a: [_; 4] = std::array::from_fn(|t| input.row32(t));
                    let t = (k.tokens)([rows[0], rows[1]], a);
                    ((k.rows)(rows, [a[0]]).map(|v| v[0]), t)
                }
            };
            let scalar = |r: usize, t: usize| {
                if f.is_k() {
                    format::dot256(f, rows[r], input.row256(t))
                } else {
                    format::dot32(f, rows[r], input.row32(t))
                }
            };
            let want_rows: Vec<f32> = (0..4).map(|r| scalar(r, 0)).collect();
            close(&by_rows, &want_rows, 1e-5, &format!("{what} rows"));
            for (r, got) in by_tokens.iter().enumerate() {
                let want: Vec<f32> = (0..4).map(|t| scalar(r, t)).collect();
                close(got, &want, 1e-5, &format!("{what} tokens, row {r}"));
            }
        }
    }
}
