//! Treating subnormal floats as zero on the CPU threads that compute (x86 MXCSR FTZ and DAZ;
//! AArch64 FPCR FZ), which a program opts into once at start-up.
//!
//! Why: a trained CAE's encoder keeps thousands of weights in the subnormal range (below
//! 1.2e-38): those of pixels that are zero in every training image, which only the penalty moves
//! and which it shrinks geometrically towards zero. The shipped default model has 18,081 of its
//! 784,000 encoder weights there. Every multiplication with a subnormal operand takes a microcode
//! assist on x86 CPUs, and products of dense vectors with such a weight matrix slowed down about
//! 14–20×: one `[5000, 784] × [784, 1000]` product took 1.31 s with the λ = 1e-3 model's weights
//! (19,141 subnormal) against 0.062 s with random weights and 0.094 s with the subnormals set to
//! zero (2-core machine, loaded). That made the Manifold Tangent Classifier's tangent stage
//! (dense `J v` and `Jᵀ u` products) about 20× slower than its arithmetic. Training's forward
//! pass was not affected (MNIST's zero pixels meet those weights as zeros).
//!
//! Flushing changes nothing a figure can see: a subnormal is below 2⁻¹²⁶, under half a unit in the
//! last place of any value above 2⁻¹⁰², so it vanishes in every sum with a normal number.
//! The library never changes the mode itself: the floating-point mode belongs to the program.

/// Sets flush-to-zero and denormals-are-zero on the calling thread, where the CPU has them;
/// returns whether it could.
pub fn flush_subnormals_on_this_thread() -> bool {
    imp::flush()
}

/// Sets [`flush_subnormals_on_this_thread`] on the calling thread and on every thread of rayon's
/// global pool (which candle's CPU kernels and this crate's kernels run on); returns whether the
/// CPU has the mode. Threads started later by other pools are not covered.
pub fn flush_subnormals() -> bool {
    let here = flush_subnormals_on_this_thread();
    rayon::broadcast(|_| {
        flush_subnormals_on_this_thread();
    });
    here
}

#[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
mod imp {
    /// MXCSR's flush-to-zero (bit 15) and denormals-are-zero (bit 6).
    const FTZ_DAZ: u32 = (1 << 15) | (1 << 6);

    pub fn flush() -> bool {
        if !std::arch::is_x86_feature_detected!("sse2") {
            return false;
        }
        let mut csr: u32 = 0;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR into the local; `ldmxcsr` loads it back with
        // two mode bits set, which changes how this thread rounds subnormals and nothing else.
        // SSE2 is present (checked above).
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack));
            csr |= FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly));
        }
        true
    }
}

#[cfg(target_arch = "aarch64")]
mod imp {
    /// FPCR's flush-to-zero bit.
    const FZ: u64 = 1 << 24;

    pub fn flush() -> bool {
        let mut fpcr: u64;
        // SAFETY: reads FPCR, sets its flush-to-zero mode bit and writes it back: only how this
        // thread treats subnormals changes.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack));
            fpcr |= FZ;
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack));
        }
        true
    }
}

#[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
mod imp {
    pub fn flush() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormals_become_zero_on_a_flushing_thread_and_stay_elsewhere() {
        let tiny = f32::MIN_POSITIVE / 8.0; // subnormal
        assert!(tiny > 0.0 && !tiny.is_normal());
        let product = |a: f32, b: f32| std::hint::black_box(a) * std::hint::black_box(b);
        // A fresh thread: the default mode keeps subnormals.
        let kept = std::thread::spawn(move || product(tiny, 1.0))
            .join()
            .unwrap();
        assert_eq!(kept, tiny);
        let flushed = std::thread::spawn(move || {
            if !flush_subnormals_on_this_thread() {
                return None;
            }
            // DAZ: a subnormal input reads as zero; FTZ: a subnormal result is written as zero.
            Some((
                product(tiny, 1.0),
                product(f32::MIN_POSITIVE, 0.5),
                product(2.0, 3.0),
            ))
        })
        .join()
        .unwrap();
        if let Some((input, result, normal)) = flushed {
            assert_eq!((input, result, normal), (0.0, 0.0, 6.0));
        }
    }
}
