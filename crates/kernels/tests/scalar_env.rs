//! `PERCEPT_KERNELS=scalar` forces the scalar kernels (its own process: the choice is made
//! once, on first use).

use percept_kernels::quant::{kernels, Format, Kernels, QInput, QMatrix};

#[test]
fn the_environment_forces_the_scalar_kernels() {
    // SAFETY: set before any thread of this test binary reads the environment.
    unsafe { std::env::set_var("PERCEPT_KERNELS", "scalar") };
    assert_eq!(kernels(), Kernels::Scalar);
    // One Q8_0 block of ones (scale 1.0) against the values 0..32.
    let mut block = half::f16::from_f32(1.0).to_le_bytes().to_vec();
    block.extend([1u8; 32]);
    let m = QMatrix::new("ones", Format::Q8_0, 1, 32, block).expect("a whole block");
    let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
    let mut out = [0f32];
    m.matmul(&QInput::new(&x, 32), &mut out)
        .expect("shapes agree");
    assert!((out[0] - 496.0).abs() < 2.0, "{}", out[0]);
}
