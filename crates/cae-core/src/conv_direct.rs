//! Direct `f32` convolution on AVX2 with FMA: the output channels across a vector's lanes, a strip
//! of output pixels in registers, the input read where it lies.
//!
//! [`crate::conv_kernel`]'s `im2col` copies every input pixel once per kernel tap into a matrix
//! for `gemm`: 25 copies for the conv preset's 5×5 layers, written out and read back for each
//! product. Here a tile of [`PIXELS`] output pixels × 16 channels (or 12 × 8) sits in twelve
//! accumulator registers; each kernel tap loads the tap's weights for those channels once and
//! broadcasts one input value per pixel. Per 1,000 samples on 2 threads (best of 4 runs): the
//! preset's second layer (8→16, 5×5, 26→22) 24–26 ms by im2col, 20 ms direct; its third (16→32,
//! 5×5, stride 2, 22→9) 21–22.5 ms and 15 ms. Its sums run over the taps in the reference's order
//! with fused multiply-adds, as `gemm`'s do, and in the conv preset's runs gave the same values.
//!
//! The im2col path stays the reference (and the path for `f64`, for channel counts that are not
//! a multiple of 8, for output rows narrower than a tile and for CPUs without AVX2/FMA); tests
//! compare the two on the presets' shapes and odd ones.
use rayon::prelude::*;

use crate::conv_kernel::{scale_block, ConvShape, SAMPLES_PER_TASK};

/// `f32` lanes of a 256-bit vector.
const LANES: usize = 8;
/// Output pixels per tile with 16 channels (two vectors): 6 × 2 accumulators + 2 weight vectors +
/// 1 broadcast fit AVX2's 16 registers.
const PIXELS: usize = 6;
/// Output pixels per tile with 8 channels (one vector).
const PIXELS_NARROW: usize = 12;

/// Whether [`conv_forward`] handles `s` on this CPU, and pays: rows of at least one full tile of
/// two vectors. Narrower rows ran slower than `im2col` (the preset's fourth layer, 4 pixels wide:
/// 44 against 54 G multiply-adds/s).
pub(crate) fn handles(s: &ConvShape) -> bool {
    s.out_channels % LANES == 0 && s.out_width() >= PIXELS && crate::simd::has_avx2_fma()
}

/// `[C_out, C_in, K, K]` → `[C_in·K·K, C_out]`: each kernel tap's weights for every output channel
/// side by side, one vector load per tap and block of channels.
fn weights_by_tap(s: &ConvShape, w: &[f32]) -> Vec<f32> {
    let taps = s.patch_len();
    let mut out = vec![0.0; s.weight_len()];
    for co in 0..s.out_channels {
        for r in 0..taps {
            out[r * s.out_channels + co] = w[co * taps + r];
        }
    }
    out
}

/// `y = conv(x, w)` (times `scale` as in [`crate::conv_kernel::conv_forward`]), for shapes that
/// [`handles`] accepts.
pub(crate) fn conv_forward(s: &ConvShape, x: &[f32], w: &[f32], scale: Option<&[f32]>) -> Vec<f32> {
    assert!(handles(s) && x.len() == s.batch * s.in_len() && w.len() == s.weight_len());
    let taps = weights_by_tap(s, w);
    let (out_len, in_len) = (s.out_len(), s.in_len());
    let mut y = vec![0.0f32; s.batch * out_len];
    y.par_chunks_mut(SAMPLES_PER_TASK * out_len)
        .zip(x.par_chunks(SAMPLES_PER_TASK * in_len))
        .enumerate()
        .for_each(|(task, (ys, xs))| {
            for (j, (y1, x1)) in ys.chunks_mut(out_len).zip(xs.chunks(in_len)).enumerate() {
                let d = scale_block(scale, task * SAMPLES_PER_TASK + j, out_len);
                // SAFETY: `handles` checked AVX2 and FMA; the slices have the sizes of `s`.
                unsafe { sample_avx2(s, x1, &taps, y1, d) };
            }
        });
    y
}

/// One sample, tile by tile; a row's last tile takes the pixels left over (fewer than a full one).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn sample_avx2(s: &ConvShape, x: &[f32], taps: &[f32], y: &mut [f32], d: Option<&[f32]>) {
    let (oh_n, ow_n) = (s.out_height(), s.out_width());
    let mut block = 0;
    while block < s.out_channels {
        let wide = s.out_channels - block >= 2 * LANES;
        let full = if wide { PIXELS } else { PIXELS_NARROW };
        for oh in 0..oh_n {
            let mut ow = 0;
            while ow < ow_n {
                let at = Tile { block, oh, ow };
                let n = full.min(ow_n - ow);
                // SAFETY: pixels ow..ow + n of row oh and channels block..block + 8V exist; the
                // caller checked the CPU.
                unsafe {
                    if wide {
                        tile_of::<2>(n, s, x, taps, y, d, at);
                    } else {
                        tile_of::<1>(n, s, x, taps, y, d, at);
                    }
                }
                ow += n;
            }
        }
        block += if wide { 2 * LANES } else { LANES };
    }
}

/// [`tile`] for `n` pixels (`n` ≤ 6 for two vectors, ≤ 12 for one), each count its own build so
/// that the accumulators stay in registers.
///
/// # Safety
/// As for [`tile`] with `P = n`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile_of<const V: usize>(
    n: usize,
    s: &ConvShape,
    x: &[f32],
    taps: &[f32],
    y: &mut [f32],
    d: Option<&[f32]>,
    at: Tile,
) {
    // SAFETY: passed on from the caller.
    unsafe {
        match n {
            1 => tile::<V, 1>(s, x, taps, y, d, at),
            2 => tile::<V, 2>(s, x, taps, y, d, at),
            3 => tile::<V, 3>(s, x, taps, y, d, at),
            4 => tile::<V, 4>(s, x, taps, y, d, at),
            5 => tile::<V, 5>(s, x, taps, y, d, at),
            6 => tile::<V, 6>(s, x, taps, y, d, at),
            7 if V == 1 => tile::<1, 7>(s, x, taps, y, d, at),
            8 if V == 1 => tile::<1, 8>(s, x, taps, y, d, at),
            9 if V == 1 => tile::<1, 9>(s, x, taps, y, d, at),
            10 if V == 1 => tile::<1, 10>(s, x, taps, y, d, at),
            11 if V == 1 => tile::<1, 11>(s, x, taps, y, d, at),
            12 if V == 1 => tile::<1, 12>(s, x, taps, y, d, at),
            _ => unreachable!("a tile of {n} pixels with {V} vectors"),
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn sample_avx2(_: &ConvShape, _: &[f32], _: &[f32], _: &mut [f32], _: Option<&[f32]>) {
    unreachable!("handles() is false off x86-64")
}

/// Where a tile sits: its first output channel, row and column.
#[derive(Clone, Copy)]
struct Tile {
    block: usize,
    oh: usize,
    ow: usize,
}

/// `V` vectors of channels × `P` pixels of one output row, summed over every input channel and
/// kernel tap in the order of the reference (channel, row, column of the tap).
///
/// # Safety
/// AVX2 and FMA are available; channels `block..block + 8V` and pixels `ow..ow + P` of row `oh`
/// exist in the output of `s`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn tile<const V: usize, const P: usize>(
    s: &ConvShape,
    x: &[f32],
    taps: &[f32],
    y: &mut [f32],
    d: Option<&[f32]>,
    at: Tile,
) {
    use std::arch::x86_64::*;
    let (k, st, co_n) = (s.kernel, s.stride, s.out_channels);
    // SAFETY: (all pointer arithmetic below) the input pixel of tap (ci, kh, kw) for output pixel
    // (oh, ow + p) is x[ci, oh·st + kh, (ow + p)·st + kw], inside the sample for every tap since
    // the output pixel exists; the tap row holds co_n weights and block + 8V ≤ co_n.
    unsafe {
        let mut acc = [[_mm256_setzero_ps(); V]; P];
        for ci in 0..s.in_channels {
            for kh in 0..k {
                let row = x
                    .as_ptr()
                    .add(ci * s.height * s.width + (at.oh * st + kh) * s.width + at.ow * st);
                let weights = taps.as_ptr().add((ci * k + kh) * k * co_n + at.block);
                for kw in 0..k {
                    let wp = weights.add(kw * co_n);
                    let wv: [__m256; V] =
                        std::array::from_fn(|v| _mm256_loadu_ps(wp.add(v * LANES)));
                    for (p, acc) in acc.iter_mut().enumerate() {
                        let xv = _mm256_broadcast_ss(&*row.add(p * st + kw));
                        for v in 0..V {
                            acc[v] = _mm256_fmadd_ps(wv[v], xv, acc[v]);
                        }
                    }
                }
            }
        }
        let plane = s.out_pixels();
        let mut lanes = [0.0f32; LANES];
        for (p, acc) in acc.iter().enumerate() {
            for (v, &sum) in acc.iter().enumerate() {
                _mm256_storeu_ps(lanes.as_mut_ptr(), sum);
                for (c, &value) in lanes.iter().enumerate() {
                    let i = (at.block + v * LANES + c) * plane + at.oh * s.out_width() + at.ow + p;
                    *y.get_unchecked_mut(i) = match d {
                        Some(d) => value * *d.get_unchecked(i),
                        None => value,
                    };
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::conv_kernel::conv_forward_im2col;

    pub(crate) fn values(n: usize, seed: usize) -> Vec<f32> {
        // Deterministic, varied, of both signs: the test needs spread, not randomness.
        (0..n)
            .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 - 1001.0) / 1001.0)
            .collect()
    }

    /// For each `(batch, C_in, C_out, height, width, kernel, stride)`: checks that `handles`
    /// takes it, then that `run(shape, input, scale)`'s (direct, reference) results agree within
    /// 1e-5 of the largest, without a scale and with one shared by 3 probes a sample (where the
    /// batch is a multiple of 3). Nothing to compare on a CPU without AVX2/FMA (said on stderr).
    pub(crate) fn compare_with_reference(
        shapes: &[(usize, usize, usize, usize, usize, usize, usize)],
        handles: fn(&ConvShape) -> bool,
        run: impl Fn(&ConvShape, &[f32], Option<&[f32]>) -> (Vec<f32>, Vec<f32>),
    ) {
        if !crate::simd::has_avx2_fma() {
            eprintln!(
                "no AVX2/FMA on this CPU: the direct kernels are never used, nothing to compare"
            );
            return;
        }
        for &(batch, in_channels, out_channels, height, width, kernel, stride) in shapes {
            let s = ConvShape {
                batch,
                in_channels,
                out_channels,
                height,
                width,
                kernel,
                stride,
            };
            assert!(handles(&s), "{s:?}");
            let x = values(batch * s.in_len(), 1);
            let probes_per_sample = if batch % 3 == 0 { 3 } else { 1 };
            let scale = values(batch / probes_per_sample * s.out_len(), 3);
            for d in [None, Some(&scale[..])] {
                let (fast, reference) = run(&s, &x, d);
                assert_eq!(fast.len(), reference.len());
                let size = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
                for (i, (a, b)) in fast.iter().zip(&reference).enumerate() {
                    assert!(
                        (a - b).abs() <= 1e-5 * size,
                        "{s:?} scaled {}: [{i}] {a} vs {b}",
                        d.is_some()
                    );
                }
            }
        }
    }

    /// Against the im2col reference on the conv preset's shapes (encoder layers; the transposed
    /// layers' input gradients) and odd ones: channel counts 8–64, strides 1–3, rows that end in a
    /// partial tile, with and without a tangent scale shared by several probes.
    #[test]
    fn matches_the_im2col_reference() {
        // (batch, C_in, C_out, height, width, kernel, stride)
        let shapes = [
            (3, 1, 8, 28, 28, 3, 1),
            (3, 8, 16, 26, 26, 5, 1),
            (3, 16, 32, 22, 22, 5, 2),
            (3, 8, 16, 21, 21, 5, 2),
            (3, 1, 8, 28, 28, 8, 1),
            (5, 3, 24, 13, 17, 3, 1),
            (2, 5, 8, 19, 30, 4, 3),
            (4, 2, 64, 11, 12, 2, 1),
            (1, 7, 40, 9, 31, 1, 1),
        ];
        compare_with_reference(&shapes, handles, |s, x, d| {
            let w = values(s.weight_len(), 2);
            (conv_forward(s, x, &w, d), conv_forward_im2col(s, x, &w, d))
        });
    }

    #[test]
    fn declines_what_it_does_not_pay_for() {
        let s = |out_channels, width| ConvShape {
            batch: 1,
            in_channels: 2,
            out_channels,
            height: 9,
            width,
            kernel: 2,
            stride: 2,
        };
        // Channel counts that are not a multiple of 8 lanes; rows narrower than a tile (the
        // preset's fourth layer: 9 → 4 pixels).
        assert!(!handles(&s(12, 30)));
        assert!(!handles(&s(1, 30)));
        assert!(!handles(&s(64, 9)));
        assert_eq!(handles(&s(64, 30)), crate::simd::has_avx2_fma());
    }
}
