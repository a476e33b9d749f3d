//! percept-kernels: the few CPU kernels where candle's generic ops cost the models most.
//!
//! candle runs element-wise ops as several passes with a scalar `expf`/`erff` each, sends
//! one-row matrix products to a single-threaded gemv, and treats one-query attention as
//! a batched matmul. Each function here takes the fused, vectorised, multi-threaded path
//! for contiguous f32 tensors on the CPU and falls back to candle's own ops for anything
//! else (other dtypes, CUDA, Metal), so callers never branch on the device.
//!
//! - [`quick_gelu`], [`gelu_erf`]: activations in one pass.
//! - [`softmax_last_dim`]: softmax over rows.
//! - [`Linear`]: `candle_nn::Linear` with a parallel gemv for a handful of rows.
//! - [`attend_one`]: attention of one query position over cached keys and values.
//! - [`attend_all`]: unmasked attention of every position over every key, fused per block.
//! - [`quant`]: GGML block-quantised matrix products (AVX2, or scalar), for the LLM.
//! - [`rows`]: RMS norm, rotary embedding, SiLU gate and causal attention on slices.

mod act;
mod attention;
mod attention_all;
mod linear;
mod math;
mod parallel;
pub mod quant;
pub mod rows;
mod simd;
mod softmax;

pub use act::{gelu_erf, quick_gelu};
pub use attention::attend_one;
pub use attention_all::attend_all;
pub use linear::Linear;
pub use softmax::softmax_last_dim;

/// A custom op's input as contiguous f32 values; `what` names the op and input in errors.
fn contiguous_f32<'a>(
    what: &str,
    s: &'a candle_core::CpuStorage,
    l: &candle_core::Layout,
) -> candle_core::Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(d), Some((a, b))) => Ok(&d[a..b]),
        _ => candle_core::bail!("{what}: contiguous f32 only"),
    }
}

/// Whether the fused kernels take `xs`: a f32 tensor on the CPU.
fn on_cpu_f32(xs: &candle_core::Tensor) -> bool {
    matches!(xs.device(), candle_core::Device::Cpu) && xs.dtype() == candle_core::DType::F32
}
