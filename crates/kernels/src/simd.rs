//! Loops compiled twice, for baseline x86-64 and for AVX2 with FMA, and chosen at run time,
//! so one release binary built without `-C target-cpu=native` vectorises its element-wise
//! loops on the CPUs that can.
//!
//! [`multiversion!`] defines a function whose body is compiled both ways: the body becomes an
//! `#[inline(always)]` function called from a `#[target_feature]` one, so it always takes
//! the features. [`run`] does the same for a closure, but a closure is only compiled with the
//! features when LLVM chooses to inline it, which it declines for large bodies called from
//! two places (the AVX2 and the plain path): keep `run` for small bodies.

/// Calls `f`, compiled for AVX2 and FMA where the CPU has them (see [`crate::quant::kernels`]).
#[inline]
pub(crate) fn run<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if crate::quant::kernels().has_avx2() {
        // SAFETY: `Kernels::Avx2` and `Avx512` are only chosen where the CPU has AVX2, FMA and
        // F16C.
        return unsafe { avx2(f) };
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `multiversion! { fn name(args) -> R { body } }`: `name` runs `body` compiled for AVX2,
/// FMA and F16C where the CPU has them, and for baseline x86-64 (or the target) otherwise.
macro_rules! multiversion {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($a:ident: $t:ty),* $(,)?) $(-> $r:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($a: $t),*) $(-> $r)? {
            #[inline(always)]
            fn body($($a: $t),*) $(-> $r)? $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn avx2($($a: $t),*) $(-> $r)? {
                body($($a),*)
            }
            #[cfg(target_arch = "x86_64")]
            if crate::quant::kernels().has_avx2() {
                // SAFETY: `Kernels::Avx2` and `Avx512` are only chosen where the CPU has
                // AVX2, FMA and F16C.
                return unsafe { avx2($($a),*) };
            }
            body($($a),*)
        }
    };
}
pub(crate) use multiversion;
