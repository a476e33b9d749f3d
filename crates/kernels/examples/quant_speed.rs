//! Speed of the quantised matrix products per block format, one token (decoding) and 64
//! tokens (a prompt): `cargo run --release -p percept-kernels --example quant_speed`, with
//! `RAYON_NUM_THREADS` and `PERCEPT_KERNELS=scalar` to compare. The matrices are L2-sized
//! (1536 rows), so this measures the kernels, not memory; `benches/llm_vs_llamacpp.sh` measures
//! the model.

use percept_kernels::quant::{kernels, Format, QInput, QMatrix};
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rows = 1536;
    println!(
        "kernels {:?}, {} threads",
        kernels(),
        rayon::current_num_threads()
    );
    for f in Format::ALL {
        let cols = if f.is_k() { 4864 } else { 576 };
        let bytes = rows * cols / f.block_len() * f.block_bytes();
        let mut data: Vec<u8> = (0..bytes).map(|i| (i * 7919 % 251) as u8).collect();
        let scale = if f == Format::Q6K { 208 } else { 0 };
        for b in data.chunks_exact_mut(f.block_bytes()) {
            b[scale..scale + 2].copy_from_slice(&half::f16::from_f32(0.01).to_le_bytes());
        }
        let m = QMatrix::new("w", f, rows, cols, data)?;
        for tokens in [1usize, 64] {
            let x: Vec<f32> = (0..tokens * cols).map(|i| (i % 13) as f32 - 6.0).collect();
            let input = QInput::new(&x, cols);
            let mut out = vec![0f32; tokens * rows];
            m.matmul(&input, &mut out)?;
            let reps = if tokens == 1 { 2000 } else { 40 };
            let start = Instant::now();
            for _ in 0..reps {
                m.matmul(&input, &mut out)?;
            }
            let each = start.elapsed().as_secs_f64() / reps as f64;
            let macs = (rows * cols * tokens) as f64;
            println!(
                "{f:?}\t{tokens} tokens\t{:8.1} us\t{:6.2} GMAC/s",
                each * 1e6,
                macs / each / 1e9
            );
        }
    }
    Ok(())
}
