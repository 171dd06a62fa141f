//! Element-wise loops compiled for the CPU they run on.
//!
//! A portable build targets baseline x86-64 (four `f32` lanes, no FMA); the fused passes are
//! bound by arithmetic, so they run about twice as fast with AVX2's eight lanes. Rust never fuses a
//! multiply and an add on its own, so both builds of a plain loop compute the same values, bit for
//! bit (tested); code that wants fused multiply-adds asks for them with `mul_add`.

/// Whether [`multiversioned!`] functions take their AVX2 build: where the CPU has it, except
/// while a test compares the two builds.
#[inline]
pub(crate) fn use_avx2_fma_build() -> bool {
    #[cfg(test)]
    if tests::PORTABLE_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    has_avx2_fma()
}

/// Whether the AVX2 and FMA instructions are available (detected once, then cached by `std`).
#[inline]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Defines a function whose body is compiled twice, for baseline x86-64 and for AVX2 with FMA,
/// and picks one at run time. The body is a plain `#[inline(always)]` function, so the compiler
/// inlines it (and what it calls with `#[inline(always)]`) into the AVX2 version; a closure
/// would be compiled on its own, for the baseline.
macro_rules! multiversioned {
    ($(#[$attr:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$attr])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::use_avx2_fma_build() {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2_fma($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                // SAFETY: the CPU supports the features `avx2_fma` is compiled for.
                return unsafe { avx2_fma($($arg),*) };
            }
            portable($($arg),*)
        }
    };
}
pub(crate) use multiversioned;

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// Set while [`portable_only`] runs its closure: `multiversioned!` functions then take their
    /// baseline build.
    pub(crate) static PORTABLE_ONLY: AtomicBool = AtomicBool::new(false);

    /// Runs `f` with the baseline builds of `multiversioned!` functions. Other tests running
    /// meanwhile get them too, which is harmless: both builds compute the same values (what its
    /// callers test).
    pub(crate) fn portable_only<R>(f: impl FnOnce() -> R) -> R {
        static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
        let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        PORTABLE_ONLY.store(true, Ordering::Relaxed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        PORTABLE_ONLY.store(false, Ordering::Relaxed);
        result.unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}
