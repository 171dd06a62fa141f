//! Matrix products through `gemm` (the kernel candle itself uses) for the custom ops' kernels,
//! generic over the element type.

/// The element types the custom kernels compute in (`f32` for training, `f64` for the numerical
/// checks).
pub(crate) trait Element:
    Copy + Send + Sync + 'static + std::ops::AddAssign + std::ops::Mul<Output = Self> + std::fmt::Debug
{
    const ZERO: Self;
    const ONE: Self;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
}

/// `dst[m×n] (+)= a[m×k] · b[k×n]`, all row-major unless `a_t`/`b_t` say the operand is stored
/// transposed (`a` as `[k×m]`, `b` as `[n×k]`), on `threads` threads (1: the calling thread).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Element>(
    dst: &mut [T],
    a: &[T],
    a_t: bool,
    b: &[T],
    b_t: bool,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
    threads: usize,
) {
    assert!(dst.len() == m * n && a.len() == m * k && b.len() == k * n);
    let (a_rs, a_cs) = if a_t {
        (1, m as isize)
    } else {
        (k as isize, 1)
    };
    let (b_rs, b_cs) = if b_t {
        (1, k as isize)
    } else {
        (n as isize, 1)
    };
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the assert above makes every (row, column) index within m×k, k×n and m×n reach inside
    // `a`, `b` and `dst` through these strides; `dst` is exclusively borrowed, so it aliases neither.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::ONE,
            T::ONE,
            false,
            false,
            false,
            parallelism,
        )
    }
}
