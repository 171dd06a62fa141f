//! Multi-threaded CPU kernels for 2-D convolutions without padding (NCHW, one group, no dilation):
//! the forward pass, the gradient with respect to the input (which is also the transposed
//! convolution's forward pass) and the gradient with respect to the weight.
//!
//! Each is `im2col`/`col2im` around one `gemm` product per sample (in `f32`, the forward pass and
//! the weight gradient go to [`crate::conv_direct`] and [`crate::conv_direct_weight`] instead where
//! those handle the shape: [`DirectConv`]); samples are spread over rayon's
//! threads and each product runs on its own thread (the per-sample products are too small for
//! `gemm`'s own threading to pay). candle 0.11's CPU convolutions run on one thread and copy their
//! operands several times; these are the kernels behind [`crate::conv_op`].
//!
//! Shapes: an input image `[C_in, H, W]`, a weight `[C_out, C_in, K, K]` (row-major, read as the
//! matrix `[C_out, C_in·K·K]`), an output `[C_out, H_out, W_out]` with `H_out = (H − K)/s + 1`.
use rayon::prelude::*;

use crate::matmul::{matmul, Element};

/// The sizes of one convolution `[B, C_in, H, W] * [C_out, C_in, K, K] → [B, C_out, H_out, W_out]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConvShape {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
}

impl ConvShape {
    pub fn out_height(&self) -> usize {
        (self.height - self.kernel) / self.stride + 1
    }

    pub fn out_width(&self) -> usize {
        (self.width - self.kernel) / self.stride + 1
    }

    pub fn in_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    pub fn out_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    pub fn out_len(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    /// Rows of the im2col matrix: `C_in·K·K`.
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }
}

/// The im2col matrix of one image: `cols[(c, kh, kw), (oh, ow)] = x[c, oh·s + kh, ow·s + kw]`.
///
/// Row `r` of the matrix starts at `cols[r · ld + offset]`: the samples of a task sit side by side,
/// `ld = samples · pixels` and `offset = sample · pixels`.
fn im2col<T: Element>(s: &ConvShape, x: &[T], cols: &mut [T], ld: usize, offset: usize) {
    let (oh_n, ow_n, k, st) = (s.out_height(), s.out_width(), s.kernel, s.stride);
    for c in 0..s.in_channels {
        let plane = &x[c * s.height * s.width..][..s.height * s.width];
        for kh in 0..k {
            for kw in 0..k {
                let row = &mut cols[((c * k + kh) * k + kw) * ld + offset..][..oh_n * ow_n];
                for oh in 0..oh_n {
                    let src = &plane[(oh * st + kh) * s.width + kw..];
                    let dst = &mut row[oh * ow_n..][..ow_n];
                    if st == 1 {
                        dst.copy_from_slice(&src[..ow_n]);
                    } else {
                        for (ow, d) in dst.iter_mut().enumerate() {
                            *d = src[ow * st];
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`] (same `ld` and `offset`): adds every column entry onto the pixel it
/// was read from (`x` is added to, not overwritten).
fn col2im<T: Element>(s: &ConvShape, cols: &[T], x: &mut [T], ld: usize, offset: usize) {
    let (oh_n, ow_n, k, st) = (s.out_height(), s.out_width(), s.kernel, s.stride);
    for c in 0..s.in_channels {
        let plane = &mut x[c * s.height * s.width..][..s.height * s.width];
        for kh in 0..k {
            for kw in 0..k {
                let row = &cols[((c * k + kh) * k + kw) * ld + offset..][..oh_n * ow_n];
                for oh in 0..oh_n {
                    let dst = &mut plane[(oh * st + kh) * s.width + kw..];
                    let src = &row[oh * ow_n..][..ow_n];
                    if st == 1 {
                        // Contiguous on both sides: a loop the compiler vectorises.
                        dst[..ow_n].iter_mut().zip(src).for_each(|(d, &v)| *d += v);
                    } else {
                        for (ow, &v) in src.iter().enumerate() {
                            dst[ow * st] += v;
                        }
                    }
                }
            }
        }
    }
}

/// The `scale` block for sample `sample` of a batch, when a scale is given: `scale` holds `B'`
/// blocks of `len` values, and sample `i` takes block `i mod B'` (the probes of one sample share it).
pub(crate) fn scale_block<T>(scale: Option<&[T]>, sample: usize, len: usize) -> Option<&[T]> {
    scale.map(|d| {
        let blocks = d.len() / len;
        &d[(sample % blocks) * len..][..len]
    })
}

fn check_scale<T>(scale: Option<&[T]>, s: &ConvShape) {
    if let Some(scale) = scale {
        let blocks = scale.len() / s.out_len().max(1);
        assert!(
            scale.len() == blocks * s.out_len() && blocks > 0 && s.batch % blocks == 0,
            "scale of {} values does not fit {s:?}",
            scale.len()
        );
    }
}

/// Samples per rayon task, side by side in one product: wide enough that `gemm` packs each weight
/// once per task rather than once per sample (the per-sample products of the conv preset are as
/// small as 16×200×484), and 75 tasks for a 600-image batch to balance any thread count. Fixed, not
/// derived from the thread count, so that the weight gradient's partial sums (one per task, added
/// in task order) are the same on every machine.
pub(crate) const SAMPLES_PER_TASK: usize = 8;

/// A worker's two buffers (im2col columns and a gathered or product matrix), allocated once per
/// rayon job rather than zeroed afresh for every task. Every entry a task reads it has written.
struct Scratch<T> {
    cols: Vec<T>,
    other: Vec<T>,
}

impl<T> Default for Scratch<T> {
    fn default() -> Self {
        Self {
            cols: Vec::new(),
            other: Vec::new(),
        }
    }
}

impl<T: Element> Scratch<T> {
    fn get(&mut self, cols: usize, other: usize) -> (&mut [T], &mut [T]) {
        self.cols.resize(cols.max(self.cols.len()), T::ZERO);
        self.other.resize(other.max(self.other.len()), T::ZERO);
        (&mut self.cols[..cols], &mut self.other[..other])
    }
}

/// Copies the `[C, P]` blocks of a task's samples into one `[C, n·P]` matrix (sample `j` in
/// columns `j·P..(j+1)·P`), each multiplied by its sample's scale block when there is one.
fn gather_channels<T: Element>(
    blocks: &[T],
    channels: usize,
    pixels: usize,
    scale: Option<&[T]>,
    first_sample: usize,
    dst: &mut [T],
) {
    let len = channels * pixels;
    let n = blocks.len() / len;
    for (j, block) in blocks.chunks(len).enumerate() {
        let d = scale_block(scale, first_sample + j, len);
        for c in 0..channels {
            let src = &block[c * pixels..][..pixels];
            let out = &mut dst[c * n * pixels + j * pixels..][..pixels];
            match d {
                None => out.copy_from_slice(src),
                Some(d) => {
                    let d = &d[c * pixels..][..pixels];
                    for ((o, &v), &f) in out.iter_mut().zip(src).zip(d) {
                        *o = v * f;
                    }
                }
            }
        }
    }
}

/// The inverse of [`gather_channels`] without a scale, with one: writes `src ⊙ scale` back into
/// per-sample `[C, P]` blocks.
fn scatter_channels<T: Element>(
    src: &[T],
    channels: usize,
    pixels: usize,
    scale: Option<&[T]>,
    first_sample: usize,
    blocks: &mut [T],
) {
    let len = channels * pixels;
    let n = blocks.len() / len;
    for (j, block) in blocks.chunks_mut(len).enumerate() {
        let d = scale_block(scale, first_sample + j, len);
        for c in 0..channels {
            let from = &src[c * n * pixels + j * pixels..][..pixels];
            let out = &mut block[c * pixels..][..pixels];
            match d {
                None => out.copy_from_slice(from),
                Some(d) => {
                    let d = &d[c * pixels..][..pixels];
                    for ((o, &v), &f) in out.iter_mut().zip(from).zip(d) {
                        *o = v * f;
                    }
                }
            }
        }
    }
}

/// The direct `f32` kernels, where they handle the shape; `None` sends [`conv_forward`] and
/// [`conv_backward_weight`] to their im2col paths (always, for `f64`).
pub(crate) trait DirectConv: Element {
    fn direct_forward(
        s: &ConvShape,
        x: &[Self],
        w: &[Self],
        scale: Option<&[Self]>,
    ) -> Option<Vec<Self>>;
    fn direct_backward_weight(
        s: &ConvShape,
        x: &[Self],
        gy: &[Self],
        scale: Option<&[Self]>,
    ) -> Option<Vec<Self>>;
}

impl DirectConv for f32 {
    fn direct_forward(
        s: &ConvShape,
        x: &[f32],
        w: &[f32],
        scale: Option<&[f32]>,
    ) -> Option<Vec<f32>> {
        use crate::conv_direct::{conv_forward, handles};
        handles(s).then(|| conv_forward(s, x, w, scale))
    }

    fn direct_backward_weight(
        s: &ConvShape,
        x: &[f32],
        gy: &[f32],
        scale: Option<&[f32]>,
    ) -> Option<Vec<f32>> {
        use crate::conv_direct_weight::{conv_backward_weight, handles};
        handles(s).then(|| conv_backward_weight(s, x, gy, scale))
    }
}

impl DirectConv for f64 {
    fn direct_forward(_: &ConvShape, _: &[f64], _: &[f64], _: Option<&[f64]>) -> Option<Vec<f64>> {
        None
    }

    fn direct_backward_weight(
        _: &ConvShape,
        _: &[f64],
        _: &[f64],
        _: Option<&[f64]>,
    ) -> Option<Vec<f64>> {
        None
    }
}

/// `y = conv(x, w)`: `x [B, C_in, H, W]`, `w [C_out, C_in, K, K]` → `[B, C_out, H_out, W_out]`.
///
/// With `scale` (`[B', C_out, H_out, W_out]`, `B` a multiple of `B'`), each output is multiplied
/// element-wise by the block of its sample (sample `i` takes block `i mod B'`): a tangent pass
/// through a layer, `g'(a) ⊙ (W ⋆ v)`, for several probes `v` per sample at once.
pub(crate) fn conv_forward<T: DirectConv>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    T::direct_forward(s, x, w, scale).unwrap_or_else(|| conv_forward_im2col(s, x, w, scale))
}

/// [`conv_forward`] by `im2col` and `gemm`: the path for every shape and type, and the reference
/// for [`crate::conv_direct`].
pub(crate) fn conv_forward_im2col<T: Element>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    assert!(x.len() == s.batch * s.in_len() && w.len() == s.weight_len());
    check_scale(scale, s);
    let mut y = vec![T::ZERO; s.batch * s.out_len()];
    let pixels = s.out_pixels();
    y.par_chunks_mut(SAMPLES_PER_TASK * s.out_len())
        .zip(x.par_chunks(SAMPLES_PER_TASK * s.in_len()))
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (task, (ys, xs))| {
            let n = xs.len() / s.in_len();
            let (cols, product) =
                scratch.get(s.patch_len() * n * pixels, s.out_channels * n * pixels);
            for (j, x1) in xs.chunks(s.in_len()).enumerate() {
                im2col(s, x1, cols, n * pixels, j * pixels);
            }
            let dims = (s.out_channels, s.patch_len(), n * pixels);
            matmul(product, w, false, cols, false, dims, false, 1);
            let first = task * SAMPLES_PER_TASK;
            scatter_channels(product, s.out_channels, pixels, scale, first, ys);
        });
    y
}

/// `∂L/∂x` of [`conv_forward`] from `gy [B, C_out, H_out, W_out]` (times `scale` as there, when
/// given): `[B, C_in, H, W]`. With the roles of the channels swapped this is the transposed
/// convolution of `gy` by `w`.
pub(crate) fn conv_backward_input<T: Element>(
    s: &ConvShape,
    gy: &[T],
    w: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    assert!(gy.len() == s.batch * s.out_len() && w.len() == s.weight_len());
    check_scale(scale, s);
    let mut gx = vec![T::ZERO; s.batch * s.in_len()];
    let pixels = s.out_pixels();
    gx.par_chunks_mut(SAMPLES_PER_TASK * s.in_len())
        .zip(gy.par_chunks(SAMPLES_PER_TASK * s.out_len()))
        .enumerate()
        .for_each_init(Scratch::default, |scratch, (task, (gxs, gys))| {
            let n = gys.len() / s.out_len();
            let (cols, g) = scratch.get(s.patch_len() * n * pixels, s.out_channels * n * pixels);
            let first = task * SAMPLES_PER_TASK;
            gather_channels(gys, s.out_channels, pixels, scale, first, g);
            // cols = Wᵀ · g: W is stored [C_out, patch], read transposed.
            let dims = (s.patch_len(), s.out_channels, n * pixels);
            matmul(cols, w, true, g, false, dims, false, 1);
            for (j, gx1) in gxs.chunks_mut(s.in_len()).enumerate() {
                col2im(s, cols, gx1, n * pixels, j * pixels);
            }
        });
    gx
}

/// `∂L/∂w` of [`conv_forward`] from `x` and `gy` (times `scale` as there, when given):
/// `[C_out, C_in, K, K]`, summed over the batch.
pub(crate) fn conv_backward_weight<T: DirectConv>(
    s: &ConvShape,
    x: &[T],
    gy: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    T::direct_backward_weight(s, x, gy, scale)
        .unwrap_or_else(|| conv_backward_weight_im2col(s, x, gy, scale))
}

/// [`conv_backward_weight`] by `im2col` and `gemm`: the path for every shape and type, and the
/// reference for [`crate::conv_direct_weight`].
pub(crate) fn conv_backward_weight_im2col<T: Element>(
    s: &ConvShape,
    x: &[T],
    gy: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    assert!(x.len() == s.batch * s.in_len() && gy.len() == s.batch * s.out_len());
    check_scale(scale, s);
    let pixels = s.out_pixels();
    let partials: Vec<Vec<T>> = x
        .par_chunks(SAMPLES_PER_TASK * s.in_len())
        .zip(gy.par_chunks(SAMPLES_PER_TASK * s.out_len()))
        .enumerate()
        .map_init(Scratch::default, |scratch, (task, (xs, gys))| {
            let n = xs.len() / s.in_len();
            let (cols, g) = scratch.get(s.patch_len() * n * pixels, s.out_channels * n * pixels);
            let first = task * SAMPLES_PER_TASK;
            gather_channels(gys, s.out_channels, pixels, scale, first, g);
            for (j, x1) in xs.chunks(s.in_len()).enumerate() {
                im2col(s, x1, cols, n * pixels, j * pixels);
            }
            // gwᵀ [patch, C_out] = cols · gᵀ (g is stored [C_out, n·pixels], read transposed).
            // `gemm` computes it as the column-major gw = g · colsᵀ, running along g's C_out rows
            // and reading cols in place; a row-major gw has it pack a copy of all of cols first
            // (the conv preset's second layer: 47 → 29 ms per 1,000 samples).
            let mut gw_t = vec![T::ZERO; s.weight_len()];
            let dims = (s.patch_len(), n * pixels, s.out_channels);
            matmul(&mut gw_t, cols, false, g, true, dims, false, 1);
            gw_t
        })
        .collect();
    weight_grad_from_parts(s, partials)
}

/// The weight gradient `[C_out, C_in, K, K]` from the tasks' parts, each `[C_in·K·K, C_out]`: added
/// in task order, whatever thread computed each, so the sum is the same on every run.
pub(crate) fn weight_grad_from_parts<T: Element>(s: &ConvShape, parts: Vec<Vec<T>>) -> Vec<T> {
    let mut gw_t = vec![T::ZERO; s.weight_len()];
    for part in parts {
        gw_t.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    let patch = s.patch_len();
    let mut gw = vec![T::ZERO; s.weight_len()];
    for (r, row) in gw_t.chunks(s.out_channels).enumerate() {
        for (co, &v) in row.iter().enumerate() {
            gw[co * patch + r] = v;
        }
    }
    gw
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn conv_naive(s: &ConvShape, x: &[f64], w: &[f64]) -> Vec<f64> {
        let (oh_n, ow_n, k) = (s.out_height(), s.out_width(), s.kernel);
        let mut y = vec![0.0; s.batch * s.out_len()];
        for b in 0..s.batch {
            for o in 0..s.out_channels {
                for oh in 0..oh_n {
                    for ow in 0..ow_n {
                        let mut acc = 0.0;
                        for c in 0..s.in_channels {
                            for kh in 0..k {
                                for kw in 0..k {
                                    let xi =
                                        ((b * s.in_channels + c) * s.height + oh * s.stride + kh)
                                            * s.width
                                            + ow * s.stride
                                            + kw;
                                    acc += x[xi] * w[((o * s.in_channels + c) * k + kh) * k + kw];
                                }
                            }
                        }
                        y[((b * s.out_channels + o) * oh_n + oh) * ow_n + ow] = acc;
                    }
                }
            }
        }
        y
    }

    fn values(n: usize, seed: u64) -> Vec<f64> {
        // A small deterministic generator: the test needs varied values, not good randomness.
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f64 / (1u64 << 31) as f64) * 2.0 - 1.0
            })
            .collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(a, b)| a * b).sum()
    }

    /// Forward against the definition; both gradients by the adjoint identity
    /// `⟨conv(x, w), g⟩ = ⟨x, ∂x⟩ = ⟨w, ∂w⟩`, which holds exactly for a bilinear map.
    #[test]
    fn kernels_match_the_definition_and_are_adjoint() {
        let shapes = [
            (3, 1, 8, 28, 28, 3, 1),
            (2, 8, 16, 26, 26, 5, 1),
            (3, 16, 32, 22, 22, 5, 2),
            (2, 32, 64, 9, 9, 2, 2),
            (5, 3, 2, 7, 10, 3, 3),
            (1, 2, 3, 5, 6, 5, 1),
        ];
        for (batch, ci, co, h, w, k, st) in shapes {
            let s = ConvShape {
                batch,
                in_channels: ci,
                out_channels: co,
                height: h,
                width: w,
                kernel: k,
                stride: st,
            };
            let x = values(batch * s.in_len(), 1);
            let wt = values(s.weight_len(), 2);
            let g = values(batch * s.out_len(), 3);
            let y = conv_forward(&s, &x, &wt, None);
            let want = conv_naive(&s, &x, &wt);
            for (a, b) in y.iter().zip(&want) {
                assert!((a - b).abs() < 1e-12, "{s:?}: {a} vs {b}");
            }
            let lhs = dot(&y, &g);
            let gx = conv_backward_input(&s, &g, &wt, None);
            let gw = conv_backward_weight(&s, &x, &g, None);
            assert!(
                (dot(&x, &gx) - lhs).abs() < 1e-9 * lhs.abs().max(1.0),
                "{s:?}"
            );
            assert!(
                (dot(&wt, &gw) - lhs).abs() < 1e-9 * lhs.abs().max(1.0),
                "{s:?}"
            );
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let s = ConvShape {
            batch: 37,
            in_channels: 8,
            out_channels: 16,
            height: 12,
            width: 11,
            kernel: 3,
            stride: 2,
        };
        let x: Vec<f32> = values(s.batch * s.in_len(), 4)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let w: Vec<f32> = values(s.weight_len(), 5)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let g: Vec<f32> = values(s.batch * s.out_len(), 6)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| {
                    (
                        conv_forward(&s, &x, &w, None),
                        conv_backward_input(&s, &g, &w, None),
                        conv_backward_weight(&s, &x, &g, None),
                    )
                })
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert_eq!(one, run(threads), "{threads} threads");
        }
    }
}
