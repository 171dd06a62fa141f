//! Multi-threaded CPU kernels for 2-D convolutions without padding (NCHW, one group, no dilation):
//! the forward pass, the gradient with respect to the input (which is also the transposed
//! convolution's forward pass) and the gradient with respect to the weight.
//!
//! Each is `im2col`/`col2im` around one `gemm` product per sample; samples are spread over rayon's
//! threads and each product runs on its own thread (the per-sample products are too small for
//! `gemm`'s own threading to pay). candle 0.11's CPU convolutions run on one thread and copy their
//! operands several times; these are the kernels behind [`crate::conv_op`].
//!
//! Shapes: an input image `[C_in, H, W]`, a weight `[C_out, C_in, K, K]` (row-major, read as the
//! matrix `[C_out, C_in·K·K]`), an output `[C_out, H_out, W_out]` with `H_out = (H − K)/s + 1`.
use rayon::prelude::*;

/// The element types the kernels compute in (`f32` for training, `f64` for the numerical checks).
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

    fn in_len(&self) -> usize {
        self.in_channels * self.height * self.width
    }

    fn out_pixels(&self) -> usize {
        self.out_height() * self.out_width()
    }

    fn out_len(&self) -> usize {
        self.out_channels * self.out_pixels()
    }

    /// Rows of the im2col matrix: `C_in·K·K`.
    fn patch_len(&self) -> usize {
        self.in_channels * self.kernel * self.kernel
    }

    pub fn weight_len(&self) -> usize {
        self.out_channels * self.patch_len()
    }
}

/// `dst[m×n] (+)= a[m×k] · b[k×n]`, all row-major unless `a_t`/`b_t` say the operand is stored
/// transposed (`a` as `[k×m]`, `b` as `[n×k]`), on the calling thread.
#[allow(clippy::too_many_arguments)]
fn matmul<T: Element>(
    dst: &mut [T],
    a: &[T],
    a_t: bool,
    b: &[T],
    b_t: bool,
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
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
            gemm::Parallelism::None,
        )
    }
}

/// The im2col matrix of one image: `cols[(c, kh, kw), (oh, ow)] = x[c, oh·s + kh, ow·s + kw]`.
fn im2col<T: Element>(s: &ConvShape, x: &[T], cols: &mut [T]) {
    let (oh_n, ow_n, k, st) = (s.out_height(), s.out_width(), s.kernel, s.stride);
    for c in 0..s.in_channels {
        let plane = &x[c * s.height * s.width..][..s.height * s.width];
        for kh in 0..k {
            for kw in 0..k {
                let row = &mut cols[((c * k + kh) * k + kw) * oh_n * ow_n..][..oh_n * ow_n];
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

/// The adjoint of [`im2col`]: adds every column entry onto the pixel it was read from (`x` is
/// added to, not overwritten).
fn col2im<T: Element>(s: &ConvShape, cols: &[T], x: &mut [T]) {
    let (oh_n, ow_n, k, st) = (s.out_height(), s.out_width(), s.kernel, s.stride);
    for c in 0..s.in_channels {
        let plane = &mut x[c * s.height * s.width..][..s.height * s.width];
        for kh in 0..k {
            for kw in 0..k {
                let row = &cols[((c * k + kh) * k + kw) * oh_n * ow_n..][..oh_n * ow_n];
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
fn scale_block<T>(scale: Option<&[T]>, sample: usize, len: usize) -> Option<&[T]> {
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

/// Samples per rayon task: enough work to amortise a task's scratch buffer, and 75 tasks for a
/// 600-image batch to balance any thread count. Fixed, not derived from the thread count, so that
/// the weight gradient's partial sums (one per task, added in task order) are the same on every
/// machine.
const SAMPLES_PER_TASK: usize = 8;

/// `y = conv(x, w)`: `x [B, C_in, H, W]`, `w [C_out, C_in, K, K]` → `[B, C_out, H_out, W_out]`.
///
/// With `scale` (`[B', C_out, H_out, W_out]`, `B` a multiple of `B'`), each output is multiplied
/// element-wise by the block of its sample (sample `i` takes block `i mod B'`): a tangent pass
/// through a layer, `g'(a) ⊙ (W ⋆ v)`, for several probes `v` per sample at once.
pub(crate) fn conv_forward<T: Element>(
    s: &ConvShape,
    x: &[T],
    w: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    assert!(x.len() == s.batch * s.in_len() && w.len() == s.weight_len());
    check_scale(scale, s);
    let mut y = vec![T::ZERO; s.batch * s.out_len()];
    let dims = (s.out_channels, s.patch_len(), s.out_pixels());
    y.par_chunks_mut(SAMPLES_PER_TASK * s.out_len())
        .zip(x.par_chunks(SAMPLES_PER_TASK * s.in_len()))
        .enumerate()
        .for_each(|(task, (ys, xs))| {
            let mut cols = vec![T::ZERO; s.patch_len() * s.out_pixels()];
            for (j, (y1, x1)) in ys
                .chunks_mut(s.out_len())
                .zip(xs.chunks(s.in_len()))
                .enumerate()
            {
                im2col(s, x1, &mut cols);
                matmul(y1, w, false, &cols, false, dims, false);
                if let Some(d) = scale_block(scale, task * SAMPLES_PER_TASK + j, s.out_len()) {
                    y1.iter_mut().zip(d).for_each(|(y, &d)| *y = *y * d);
                }
            }
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
    let dims = (s.patch_len(), s.out_channels, s.out_pixels());
    gx.par_chunks_mut(SAMPLES_PER_TASK * s.in_len())
        .zip(gy.par_chunks(SAMPLES_PER_TASK * s.out_len()))
        .enumerate()
        .for_each(|(task, (gxs, gys))| {
            let mut cols = vec![T::ZERO; s.patch_len() * s.out_pixels()];
            let mut scaled = vec![T::ZERO; if scale.is_some() { s.out_len() } else { 0 }];
            for (j, (gx1, gy1)) in gxs
                .chunks_mut(s.in_len())
                .zip(gys.chunks(s.out_len()))
                .enumerate()
            {
                let gy1 = scaled_copy(gy1, scale, task * SAMPLES_PER_TASK + j, &mut scaled);
                // cols = Wᵀ · gy: W is stored [C_out, patch], read transposed.
                matmul(&mut cols, w, true, gy1, false, dims, false);
                col2im(s, &cols, gx1);
            }
        });
    gx
}

/// `g` itself, or `g ⊙` its sample's scale block written into `buffer`.
fn scaled_copy<'a, T: Element>(
    g: &'a [T],
    scale: Option<&[T]>,
    sample: usize,
    buffer: &'a mut [T],
) -> &'a [T] {
    match scale_block(scale, sample, g.len()) {
        None => g,
        Some(d) => {
            for ((b, &g), &d) in buffer.iter_mut().zip(g).zip(d) {
                *b = g * d;
            }
            buffer
        }
    }
}

/// `∂L/∂w` of [`conv_forward`] from `x` and `gy` (times `scale` as there, when given):
/// `[C_out, C_in, K, K]`, summed over the batch.
pub(crate) fn conv_backward_weight<T: Element>(
    s: &ConvShape,
    x: &[T],
    gy: &[T],
    scale: Option<&[T]>,
) -> Vec<T> {
    assert!(x.len() == s.batch * s.in_len() && gy.len() == s.batch * s.out_len());
    check_scale(scale, s);
    let dims = (s.out_channels, s.out_pixels(), s.patch_len());
    let partials: Vec<Vec<T>> = x
        .par_chunks(SAMPLES_PER_TASK * s.in_len())
        .zip(gy.par_chunks(SAMPLES_PER_TASK * s.out_len()))
        .enumerate()
        .map(|(task, (xs, gys))| {
            let mut gw = vec![T::ZERO; s.weight_len()];
            let mut cols = vec![T::ZERO; s.patch_len() * s.out_pixels()];
            let mut scaled = vec![T::ZERO; if scale.is_some() { s.out_len() } else { 0 }];
            for (j, (x1, gy1)) in xs.chunks(s.in_len()).zip(gys.chunks(s.out_len())).enumerate() {
                let gy1 = scaled_copy(gy1, scale, task * SAMPLES_PER_TASK + j, &mut scaled);
                im2col(s, x1, &mut cols);
                // gw += gy · colsᵀ: cols is stored [patch, pixels], read transposed.
                matmul(&mut gw, gy1, false, &cols, true, dims, true);
            }
            gw
        })
        .collect();
    // Added in task order, whatever thread computed each part: the same sum on every run.
    let mut gw = vec![T::ZERO; s.weight_len()];
    for part in partials {
        gw.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    gw
}

/// `x + b` per channel: `x [B, C, P]` (P pixels), `b [C]`. Multi-threaded over samples.
pub(crate) fn add_channel_bias<T: Element>(x: &[T], bias: &[T], pixels: usize) -> Vec<T> {
    let sample = bias.len() * pixels;
    assert!(sample > 0 && x.len() % sample == 0);
    let mut out = x.to_vec();
    out.par_chunks_mut(sample).for_each(|o| {
        for (plane, &b) in o.chunks_mut(pixels).zip(bias) {
            plane.iter_mut().for_each(|v| *v += b);
        }
    });
    out
}

/// `Σ_{b, p} g[b, c, p]` for every channel `c`: `g [B, C, P]` → `[C]`, the gradient of a channel
/// bias. Partial sums per block of samples, added in block order (the same result on every run).
pub(crate) fn channel_sums<T: Element>(g: &[T], channels: usize, pixels: usize) -> Vec<T> {
    let sample = channels * pixels;
    assert!(sample > 0 && g.len() % sample == 0);
    let partials: Vec<Vec<T>> = g
        .par_chunks(SAMPLES_PER_TASK * sample)
        .map(|block| {
            let mut sums = vec![T::ZERO; channels];
            for one in block.chunks(sample) {
                for (sum, plane) in sums.iter_mut().zip(one.chunks(pixels)) {
                    plane.iter().for_each(|&v| *sum += v);
                }
            }
            sums
        })
        .collect();
    let mut sums = vec![T::ZERO; channels];
    for part in partials {
        sums.iter_mut().zip(part).for_each(|(a, b)| *a += b);
    }
    sums
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
                        channel_sums(&g, s.out_channels, s.out_pixels()),
                    )
                })
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert_eq!(one, run(threads), "{threads} threads");
        }
    }
}
