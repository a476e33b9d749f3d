//! Loops compiled twice, for baseline x86-64 and for AVX2 with FMA, and chosen at run time,
//! so one release binary built without `-C target-cpu=native` vectorises its element-wise
//! loops on the CPUs that can. `run(f)` calls `f` inside a function compiled with those
//! features; `f` and the `#[inline(always)]` math it calls are inlined there and vectorised
//! for it.

/// Calls `f`, compiled for AVX2 and FMA where the CPU has them (see [`crate::quant::kernels`]).
#[inline]
pub(crate) fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::kernels().has_avx2() {
        // SAFETY: `Kernels::Avx2` and `Avx512` are only chosen where the CPU has AVX2, FMA and F16C.
        return unsafe { avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}
