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
}
