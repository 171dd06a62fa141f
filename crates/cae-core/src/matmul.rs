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

/// `gemm`'s threading for `threads` threads (1: the calling thread alone).
fn parallelism(threads: usize) -> gemm::Parallelism {
    if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    }
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
    let parallelism = parallelism(threads);
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

/// Columns per block of [`symmetric_at_b`]: 128 splits the deep preset's 512 into 4×4 blocks, of
/// which the 10 on and above the diagonal are computed (62.5% of the products).
const SYMMETRIC_BLOCK: usize = 128;

/// `dst[h×h] = aᵀ · b` for `a`, `b` row-major `[n × h]`, when the result is known to be symmetric
/// (`b` is `a` with its rows scaled): only the blocks on and above the diagonal are multiplied,
/// the others mirrored. On `threads` threads.
pub(crate) fn symmetric_at_b<T: Element>(
    dst: &mut [T],
    a: &[T],
    b: &[T],
    h: usize,
    threads: usize,
) {
    assert!(h > 0 && dst.len() == h * h && a.len() == b.len() && a.len() % h == 0);
    let n = a.len() / h;
    let parallelism = parallelism(threads);
    let blocks: Vec<(usize, usize)> = (0..h)
        .step_by(SYMMETRIC_BLOCK)
        .map(|s| (s, SYMMETRIC_BLOCK.min(h - s)))
        .collect();
    for (bi, &(i0, ni)) in blocks.iter().enumerate() {
        for &(j0, nj) in &blocks[bi..] {
            // SAFETY: block (i0, j0) reads a[r·h + i0 + x] for r < n, x < ni and
            // b[r·h + j0 + y] for y < nj, all < n·h = a.len() = b.len() since i0 + ni ≤ h and
            // j0 + nj ≤ h; it writes dst[(i0 + x)·h + j0 + y] < h·h = dst.len(). `dst` is
            // exclusively borrowed and aliases neither input.
            unsafe {
                gemm::gemm(
                    ni,
                    nj,
                    n,
                    dst.as_mut_ptr().add(i0 * h + j0),
                    1,
                    h as isize,
                    false,
                    a.as_ptr().add(i0),
                    h as isize,
                    1,
                    b.as_ptr().add(j0),
                    1,
                    h as isize,
                    T::ONE,
                    T::ONE,
                    false,
                    false,
                    false,
                    parallelism,
                )
            }
        }
    }
    for i in 0..h {
        for j in 0..i {
            let block_of = |k: usize| k / SYMMETRIC_BLOCK;
            if block_of(j) < block_of(i) {
                dst[i * h + j] = dst[j * h + i];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn symmetric_product_matches_the_full_one() {
        for (n, h) in [(7usize, 5usize), (50, 300), (3, 129)] {
            let a: Vec<f64> = (0..n * h)
                .map(|i| ((i * 37 % 101) as f64 - 50.0) / 7.0)
                .collect();
            let b: Vec<f64> = a
                .iter()
                .enumerate()
                .map(|(i, v)| v * (1.0 + (i / h) as f64))
                .collect();
            let mut full = vec![0.0; h * h];
            super::matmul(&mut full, &a, true, &b, false, (h, n, h), false, 1);
            let mut sym = vec![0.0; h * h];
            super::symmetric_at_b(&mut sym, &a, &b, h, 2);
            for (x, y) in sym.iter().zip(&full) {
                assert!((x - y).abs() <= 1e-9 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
    }
}
