//! Time the fused kernels spend in their matrix products (operand packing included), counted
//! only with the `product-timing` feature: the benchmarks turn it on to report what share of a
//! training step the products take, measured inside the same steps. Without the feature
//! [`timed`] is just a call and [`take_nanos`] is always 0.
#[cfg(feature = "product-timing")]
use std::sync::atomic::{AtomicU64, Ordering};

#[cfg(feature = "product-timing")]
static NANOS: AtomicU64 = AtomicU64::new(0);

/// Runs `product`, adding its wall time to the count.
#[inline(always)]
pub(crate) fn timed<R>(product: impl FnOnce() -> R) -> R {
    #[cfg(feature = "product-timing")]
    {
        let start = std::time::Instant::now();
        let result = product();
        let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        NANOS.fetch_add(nanos, Ordering::Relaxed);
        result
    }
    #[cfg(not(feature = "product-timing"))]
    product()
}

/// Nanoseconds spent in matrix products since the last call, which resets the count.
#[cfg(feature = "bench")]
pub fn take_nanos() -> u64 {
    #[cfg(feature = "product-timing")]
    return NANOS.swap(0, Ordering::Relaxed);
    #[cfg(not(feature = "product-timing"))]
    0
}

/// Whether this build counts (the `product-timing` feature).
#[cfg(feature = "bench")]
pub const ENABLED: bool = cfg!(feature = "product-timing");
