//! `PERCEPT_KERNELS=avx2` keeps a CPU with AVX-512 VNNI on the AVX2 tiles for prompts too
//! (its own process: the choice is made once, on first use).

use percept_kernels::quant::{kernels, Format, Kernels, QInput, QMatrix};

#[test]
fn the_environment_forces_the_avx2_kernels() {
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("PERCEPT_KERNELS", "avx2") };
    let k = kernels();
    assert_ne!(k, Kernels::Avx512);
    // Five tokens: the row count that would take the prompt kernel. A Q8_0 block of ones
    // (scale 1.0) against 0..32 for every token.
    let mut block = half::f16::from_f32(1.0).to_le_bytes().to_vec();
    block.extend([1u8; 32]);
    let m = QMatrix::new("ones", Format::Q8_0, 1, 32, block).expect("a whole block");
    let x: Vec<f32> = (0..5 * 32).map(|i| (i % 32) as f32).collect();
    let mut out = [0f32; 5];
    m.matmul(&QInput::new(&x, 32), &mut out)
        .expect("shapes agree");
    for v in out {
        assert!((v - 496.0).abs() < 2.0, "{v}");
    }
    eprintln!("kernels: {k:?}");

    // The fused attention's AVX2 build (four-row tiles) against candle's ops.
    use candle_core::{Device, Tensor};
    let dev = Device::Cpu;
    let (tq, tk, heads, dh) = (37, 50, 2, 64);
    let r = |t| Tensor::randn(0f32, 1.0, (1, t, heads * dh), &dev).expect("randn");
    let (q, kk, v) = (r(tq), r(tk), r(tk));
    let ours = percept_kernels::attend_all(&q, &kk, &v, heads, 0.125).expect("fused");
    let split = |x: &Tensor| {
        let t = x.dim(1).expect("dims");
        x.reshape((1, t, heads, dh))
            .and_then(|x| x.transpose(1, 2))
            .and_then(|x| x.contiguous())
            .expect("split")
    };
    let w = (split(&q) * 0.125)
        .and_then(|w| w.matmul(&split(&kk).t().expect("t")))
        .expect("scores");
    let want = candle_nn::ops::softmax_last_dim(&w)
        .and_then(|p| p.matmul(&split(&v)))
        .and_then(|o| o.transpose(1, 2))
        .and_then(|o| o.reshape((1, tq, heads * dh)))
        .expect("reference");
    let err = (ours - want)
        .and_then(|d| d.abs())
        .and_then(|d| d.max_all())
        .and_then(|d| d.to_scalar::<f32>())
        .expect("error");
    assert!(err < 1e-4, "attend_all on AVX2: {err}");
}
