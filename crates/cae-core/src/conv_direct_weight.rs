//! The weight gradient of a convolution, direct, in `f32` on AVX2 with FMA: the companion of
//! [`crate::conv_direct`] for `∂L/∂w = Σ_b Σ_pixels gy_b(pixel) · x_b(pixel's patch)`.
//!
//! The im2col path builds the matrix of every patch of a task's samples and multiplies it by the
//! output gradient; here a tile holds the `K` taps of one kernel row (one input channel, one `kh`)
//! × 16 (or 8) output channels in registers and runs over every output pixel of the task's
//! samples: per pixel, one or two vector loads of the output gradient (stored pixel-major for it)
//! and `K` broadcasts of input pixels read where they lie; no patch matrix is written or read.
//! Measurements: [`handles`].
use rayon::prelude::*;

use crate::conv_kernel::{scale_block, weight_grad_from_parts, ConvShape, SAMPLES_PER_TASK};

/// `f32` lanes of a 256-bit vector.
const LANES: usize = 8;
/// Accumulator registers of a tile (of AVX2's 16: the rest hold the loaded gradient and one
/// broadcast input value).
const ACCUMULATORS: usize = 12;

/// Whether [`conv_backward_weight`] handles `s` on this CPU, and pays: whole vectors of output
/// channels, at most 8 taps a row, and at least [`MIN_ACCUMULATORS`] accumulators a tile (fewer
/// wait on each other's multiply-adds).
///
/// Per 1,000 samples, 2 threads, best of 4, im2col → direct: the conv preset's second layer
/// (8→16, 5×5: 10 accumulators) 26.0 → 20.4 ms, third (16→32, 5×5, stride 2: 10) 21.9 → 14.0,
/// the transposed layers' (16 channels 5×5 stride 2: 10; 8 channels 8×8: 8) 8.5 → 4.1 and
/// 8.0 → 4.4; declined: the first layer (8 channels 3×3: 3) 2.0 → 3.8, the fourth (64 channels
/// 2×2: 4) 2.9 → 4.0.
pub(crate) fn handles(s: &ConvShape) -> bool {
    s.out_channels % LANES == 0
        && s.kernel <= 8
        && s.kernel * vectors(s) >= MIN_ACCUMULATORS
        && crate::simd::has_avx2_fma()
}

/// The fewest accumulators a tile may have (see [`handles`]).
const MIN_ACCUMULATORS: usize = 8;

/// Vectors of output channels per tile: two where they and the kernel row fit the accumulators.
fn vectors(s: &ConvShape) -> usize {
    if s.out_channels % (2 * LANES) == 0 && 2 * s.kernel <= ACCUMULATORS {
        2
    } else {
        1
    }
}

/// `∂L/∂w` as in [`crate::conv_kernel::conv_backward_weight`] (`gy` times `scale` when given),
/// `[C_out, C_in, K, K]`, for shapes that [`handles`] accepts. Partial sums per task of
/// [`SAMPLES_PER_TASK`] samples, added in task order: the same on every thread count.
pub(crate) fn conv_backward_weight(
    s: &ConvShape,
    x: &[f32],
    gy: &[f32],
    scale: Option<&[f32]>,
) -> Vec<f32> {
    assert!(handles(s) && x.len() == s.batch * s.in_len() && gy.len() == s.batch * s.out_len());
    let partials: Vec<Vec<f32>> = x
        .par_chunks(SAMPLES_PER_TASK * s.in_len())
        .zip(gy.par_chunks(SAMPLES_PER_TASK * s.out_len()))
        .enumerate()
        .map(|(task, (xs, gys))| {
            let gt = pixel_major(s, gys, scale, task * SAMPLES_PER_TASK);
            let mut gw_t = vec![0.0f32; s.weight_len()];
            // SAFETY: `handles` checked AVX2 and FMA; the slices have the sizes of `s`.
            unsafe { task_avx2(s, xs, &gt, &mut gw_t) };
            gw_t
        })
        .collect();
    weight_grad_from_parts(s, partials)
}

/// A task's output gradients `[n, C_out, pixels]` as `[n·pixels, C_out]` (times their sample's
/// scale block when given): one pixel's channels side by side, for vector loads.
fn pixel_major(s: &ConvShape, gys: &[f32], scale: Option<&[f32]>, first: usize) -> Vec<f32> {
    let (co_n, pixels) = (s.out_channels, s.out_pixels());
    let mut gt = vec![0.0f32; gys.len()];
    for (j, g) in gys.chunks(co_n * pixels).enumerate() {
        let d = scale_block(scale, first + j, co_n * pixels);
        let out = &mut gt[j * pixels * co_n..][..pixels * co_n];
        for co in 0..co_n {
            for p in 0..pixels {
                let i = co * pixels + p;
                out[p * co_n + co] = d.map_or(g[i], |d| g[i] * d[i]);
            }
        }
    }
    gt
}

/// Every tile of one task, added into `gw_t` (`[C_in·K·K, C_out]`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn task_avx2(s: &ConvShape, xs: &[f32], gt: &[f32], gw_t: &mut [f32]) {
    let width = vectors(s) * LANES;
    for ci in 0..s.in_channels {
        for kh in 0..s.kernel {
            for block in (0..s.out_channels).step_by(width) {
                let at = Row { ci, kh, block };
                // SAFETY: the caller checked the CPU; `handles` bounds the kernel to 4..=8 and
                // `vectors` makes block + width ≤ C_out.
                unsafe {
                    match (width / LANES, s.kernel) {
                        (1, 8) => tile::<1, 8>(s, xs, gt, gw_t, at),
                        (2, 4) => tile::<2, 4>(s, xs, gt, gw_t, at),
                        (2, 5) => tile::<2, 5>(s, xs, gt, gw_t, at),
                        (2, 6) => tile::<2, 6>(s, xs, gt, gw_t, at),
                        (v, k) => unreachable!("a weight tile of {v} vectors × {k} taps"),
                    }
                }
            }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn task_avx2(_: &ConvShape, _: &[f32], _: &[f32], _: &mut [f32]) {
    unreachable!("handles() is false off x86-64")
}

/// Which kernel row a tile computes: input channel, tap row, first output channel.
#[derive(Clone, Copy)]
struct Row {
    ci: usize,
    kh: usize,
    block: usize,
}

/// Taps `(ci, kh, 0..K)` × channels `block..block + 8V`, summed over the task's samples and pixels
/// in order, stored into `gw_t`.
///
/// # Safety
/// AVX2 and FMA are available; `K` is the kernel of `s`; `block + 8V ≤ C_out`; `xs` and `gt` hold
/// the same whole samples.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<const V: usize, const K: usize>(
    s: &ConvShape,
    xs: &[f32],
    gt: &[f32],
    gw_t: &mut [f32],
    at: Row,
) {
    use std::arch::x86_64::*;
    let (st, co_n, ow_n) = (s.stride, s.out_channels, s.out_width());
    let pixels = s.out_pixels();
    // SAFETY: output pixel (oh, ow) of a sample reads input pixels (oh·st + kh, ow·st + kw) for
    // kw < K, inside the sample's channel ci; gt holds C_out values per pixel of every sample.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); V]; K];
        for (j, x) in xs.chunks(s.in_len()).enumerate() {
            let plane = x.as_ptr().add(at.ci * s.height * s.width);
            let g = gt.as_ptr().add(j * pixels * co_n + at.block);
            for oh in 0..s.out_height() {
                let row = plane.add((oh * st + at.kh) * s.width);
                for ow in 0..ow_n {
                    let gp = g.add((oh * ow_n + ow) * co_n);
                    let gv: [__m256; V] =
                        std::array::from_fn(|v| _mm256_loadu_ps(gp.add(v * LANES)));
                    let input = row.add(ow * st);
                    for (kw, acc) in acc.iter_mut().enumerate() {
                        let xv = _mm256_broadcast_ss(&*input.add(kw));
                        for v in 0..V {
                            acc[v] = _mm256_fmadd_ps(gv[v], xv, acc[v]);
                        }
                    }
                }
            }
        }
        for (kw, acc) in acc.iter().enumerate() {
            let r = (at.ci * K + at.kh) * K + kw;
            for (v, &sum) in acc.iter().enumerate() {
                _mm256_storeu_ps(gw_t.as_mut_ptr().add(r * co_n + at.block + v * LANES), sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conv_direct::tests::{compare_with_reference, values};
    use crate::conv_kernel::conv_backward_weight_im2col;

    /// Against the im2col reference on the conv preset's shapes and odd ones (batches that leave a
    /// partial task, strides 1–3, 8–48 channels, 4- to 8-tap kernels), with and without a scale
    /// shared by several probes; and what it declines.
    #[test]
    fn matches_the_im2col_reference() {
        // (batch, C_in, C_out, height, width, kernel, stride)
        let shapes = [
            (12, 8, 16, 26, 26, 5, 1),
            (12, 16, 32, 22, 22, 5, 2),
            (9, 8, 16, 21, 21, 5, 2),
            (9, 1, 8, 28, 28, 8, 1),
            (11, 3, 16, 13, 17, 4, 1),
            (3, 2, 48, 19, 30, 6, 3),
            (17, 5, 8, 15, 14, 8, 2),
        ];
        compare_with_reference(&shapes, handles, |s, x, d| {
            let gy = values(s.batch * s.out_len(), 2);
            (
                conv_backward_weight(s, x, &gy, d),
                conv_backward_weight_im2col(s, x, &gy, d),
            )
        });
        let declined = |out_channels, kernel| ConvShape {
            batch: 1,
            in_channels: 2,
            out_channels,
            height: 20,
            width: 20,
            kernel,
            stride: 1,
        };
        // The preset's first and fourth layers (3 and 4 accumulators), 12 channels, 9 taps.
        for (c, k) in [(8, 3), (64, 2), (12, 5), (16, 9)] {
            assert!(!handles(&declined(c, k)), "{c} channels, {k} taps");
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        if !crate::simd::has_avx2_fma() {
            return;
        }
        let s = ConvShape {
            batch: 37,
            in_channels: 3,
            out_channels: 16,
            height: 12,
            width: 11,
            kernel: 5,
            stride: 1,
        };
        let x = values(s.batch * s.in_len(), 4);
        let gy = values(s.batch * s.out_len(), 5);
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| conv_backward_weight(&s, &x, &gy, None))
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert_eq!(one, run(threads), "{threads} threads");
        }
    }
}
