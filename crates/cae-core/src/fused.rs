//! Fused CPU kernels for the one-layer CAE: the training step ([`step`]: loss, exact penalty and
//! every parameter gradient in one pass, with hand-derived backward formulas) and the forward pass.
//!
//! candle's CPU backend runs element-wise ops and batch reductions on one thread, with a temporary per op;
//! for the 784-1000-784 model that costs more than its five matrix products. Here the matrix products go to
//! `gemm` (the kernel candle itself uses) and each element-wise stage is one multi-threaded pass.
//! The two products that involve the input batch skip its zeros when it is mostly background
//! (see [`crate::sparse`]).
//! The result is checked against candle's autograd on the same model in the tests.
mod step;

pub(crate) use step::{one_layer_step, StepBuffers};

use std::sync::{Mutex, OnceLock};

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::host::HostF32;
use crate::layer::LayerParams;
use crate::product_timing;
use crate::simd::multiversioned;
use crate::sparse::{self, Csr, Panels};
use crate::{fastmath, Activation, Result};

/// A row-major matrix, or the transpose of one, as `gemm` strides.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

impl<'a> Mat<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        debug_assert_eq!(data.len(), rows * cols);
        Self {
            data,
            rows,
            cols,
            row_stride: cols as isize,
            col_stride: 1,
        }
    }

    fn t(self) -> Self {
        Self {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
        }
    }
}

/// `dst = a · b` (or `dst += a · b` when `accumulate`), `dst` row-major `[a.rows, b.cols]`.
fn matmul(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool) {
    matmul_on(dst, a, b, accumulate, rayon::current_num_threads());
}

/// [`matmul`] on `threads` threads (1: on the calling thread alone).
fn matmul_on(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) {
    product_timing::timed(|| matmul_untimed(dst, a, b, accumulate, threads))
}

/// [`matmul_on`], not counted by [`product_timing`] (for products its caller times together).
fn matmul_untimed(dst: &mut [f32], a: Mat, b: Mat, accumulate: bool, threads: usize) {
    assert_eq!(a.cols, b.rows, "inner dimensions");
    assert_eq!(dst.len(), a.rows * b.cols, "output size");
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols);
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the asserts above bound every index gemm reads or writes through these strides, and `dst`
    // is exclusively borrowed and does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            a.rows,
            b.cols,
            a.cols,
            dst.as_mut_ptr(),
            1,
            b.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride,
            a.row_stride,
            b.data.as_ptr(),
            b.col_stride,
            b.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// The encoder's weights `W`, `[H, D]`, for products `x · Wᵀ`: packed for the sparse kernel by the
/// first product whose input is sparse, and then reused by the others.
struct EncoderWeights<'a> {
    w: &'a [f32],
    h_dim: usize,
    panels: OnceLock<Panels>,
    /// Storage the panels are built in.
    buffer: Mutex<Vec<f32>>,
}

impl<'a> EncoderWeights<'a> {
    fn new(w: &'a [f32], h_dim: usize) -> Self {
        Self::reusing(w, h_dim, Vec::new())
    }

    /// Weights whose panels, if built, go into `buffer`'s storage (see [`Panels::into_buffer`]).
    fn reusing(w: &'a [f32], h_dim: usize, buffer: Vec<f32>) -> Self {
        Self {
            w,
            h_dim,
            panels: OnceLock::new(),
            buffer: Mutex::new(buffer),
        }
    }

    /// The storage, for the next [`EncoderWeights::reusing`].
    fn into_buffer(self) -> Vec<f32> {
        match self.panels.into_inner() {
            Some(panels) => panels.into_buffer(),
            None => self.buffer.into_inner().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// `h = x · Wᵀ` on `threads` threads, skipping the input's zeros when `x_sparse` holds them.
    fn product(&self, h: &mut [f32], x: &[f32], x_sparse: Option<&Csr>, threads: usize) {
        let d = self.w.len() / self.h_dim.max(1);
        match x_sparse {
            Some(csr) => product_timing::timed(|| {
                let panels = self.panels.get_or_init(|| {
                    let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
                    Panels::from_transpose_in(std::mem::take(&mut *buffer), self.w, self.h_dim, d)
                });
                sparse::sparse_times_dense(h, csr, panels)
            }),
            None => matmul_on(
                h,
                Mat::new(x, x.len() / d.max(1), d),
                Mat::new(self.w, self.h_dim, d).t(),
                false,
                threads,
            ),
        }
    }
}

/// `(g(a), g'(a), g''(a))`.
#[inline(always)]
fn activation3(act: Activation, a: f32) -> (f32, f32, f32) {
    match act {
        Activation::Sigmoid => {
            let h = sigmoid(a);
            let d = h * (1.0 - h);
            (h, d, d * (1.0 - 2.0 * h))
        }
        Activation::Tanh => {
            let h = a.tanh();
            let d = 1.0 - h * h;
            (h, d, -2.0 * h * d)
        }
        Activation::Relu => (a.max(0.0), if a > 0.0 { 1.0 } else { 0.0 }, 0.0),
        Activation::Softplus => {
            let s = sigmoid(a);
            (a.max(0.0) + (-a.abs()).exp().ln_1p(), s, s * (1.0 - s))
        }
        Activation::Identity => (a, 1.0, 0.0),
    }
}

#[inline(always)]
fn sigmoid(a: f32) -> f32 {
    fastmath::sigmoid_and_derivative(a).0
}

/// The weights of a one-layer CAE, as host slices: the kernels' view of its two [`LayerParams`]
/// (see [`with_host_layer`]).
pub(crate) struct OneLayer<'a> {
    pub activation: Activation,
    /// `[H, D]`
    pub w: &'a [f32],
    pub b: &'a [f32],
    /// Untied decoder weight `[D, H]`; `None` when tied (the decoder uses `Wᵀ`).
    pub v: Option<&'a [f32]>,
    pub c: &'a [f32],
}

impl OneLayer<'_> {
    /// The `[H, D]` matrix the code is multiplied by for the decoder's logits: `Vᵀ`, or `W` when
    /// tied.
    fn decoder_matrix(&self) -> Mat<'_> {
        let (h_dim, d) = (self.b.len(), self.c.len());
        match self.v {
            Some(v) => Mat::new(v, d, h_dim).t(),
            None => Mat::new(self.w, h_dim, d),
        }
    }
}

/// `f` on host views of a one-layer CAE's weights and of `x`, read in place where they can be.
/// The views hold the tensors' storage read-locked, so they end with this call.
pub(crate) fn with_host_layer<R>(
    encoder: &LayerParams,
    decoder: &LayerParams,
    activation: Activation,
    x: &Tensor,
    f: impl FnOnce(&OneLayer, &[f32]) -> R,
) -> Result<R> {
    let (w, b, c, xs) = (
        HostF32::new(encoder.weight()?)?,
        HostF32::new(&encoder.bias)?,
        HostF32::new(&decoder.bias)?,
        HostF32::new(x)?,
    );
    let v = decoder.weight.as_ref().map(HostF32::new).transpose()?;
    let layer = OneLayer {
        activation,
        w: w.as_slice(),
        b: b.as_slice(),
        v: v.as_ref().map(HostF32::as_slice),
        c: c.as_slice(),
    };
    Ok(f(&layer, xs.as_slice()))
}

multiversioned! {
    /// `row ← g(row + bias)`.
    fn activate_in_place(act: Activation, row: &mut [f32], bias: &[f32]) {
        match act {
            Activation::Sigmoid => activate_in_place_with(row, bias, sigmoid),
            act => activate_in_place_with(row, bias, |a| activation3(act, a).0),
        }
    }
}

/// [`activate_in_place`] for one activation `f`; generic, so that each activation's loop is
/// compiled (and vectorised) on its own.
#[inline(always)]
fn activate_in_place_with(row: &mut [f32], bias: &[f32], f: impl Fn(f32) -> f32) {
    row.iter_mut().zip(bias).for_each(|(a, b)| *a = f(*a + b));
}

/// Rows of a batch that one thread of [`one_layer_forward`] carries through every stage on its own
/// (single-threaded products, its code in a buffer of its own), so that the threads never wait for
/// each other between stages and a task's code stays in cache until it is decoded. On the 10,000
/// MNIST test images (criterion, six interleaved runs each) this took the pass from 185-210 ms with
/// every stage spread over both threads in 1,024-row chunks to 149-203 ms; tasks of 128, 256 and
/// 1,024 rows were slower than 512.
const FORWARD_TASK_ROWS: usize = 512;

/// What [`one_layer_forward`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardOutput {
    /// The code, `[batch, H]`.
    Code,
    /// The reconstruction probabilities, `[batch, D]`; the code is only kept a task at a time.
    Reconstruction,
}

/// The forward pass of a one-layer CAE alone, `what` it asks for, in tasks of
/// [`FORWARD_TASK_ROWS`] rows spread over the threads.
pub(crate) fn one_layer_forward(
    p: &OneLayer,
    x: &[f32],
    batch: usize,
    what: ForwardOutput,
) -> Vec<f32> {
    let h_dim = p.b.len();
    let d = p.c.len();
    let width = match what {
        ForwardOutput::Code => h_dim,
        ForwardOutput::Reconstruction => d,
    };
    let task = FORWARD_TASK_ROWS.min(batch).max(1);
    let encoder = EncoderWeights::new(p.w, h_dim);
    let encode = |h: &mut [f32], x: &[f32], rows: usize| {
        encoder.product(h, x, Csr::from_dense_if_sparse(x, rows, d).as_ref(), 1);
        for row in h.chunks_exact_mut(h_dim) {
            activate_in_place(p.activation, row, p.b);
        }
    };
    let mut result = vec![0f32; batch * width];
    result
        .par_chunks_mut((task * width).max(1))
        .zip(x.par_chunks((task * d).max(1)))
        .for_each_init(
            // A reconstruction's code, one task's at a time.
            || match what {
                ForwardOutput::Code => Vec::new(),
                ForwardOutput::Reconstruction => vec![0f32; task * h_dim],
            },
            |code_buffer, (result, x)| {
                let rows = x.len() / d.max(1);
                match what {
                    ForwardOutput::Code => encode(result, x, rows),
                    ForwardOutput::Reconstruction => {
                        let h = &mut code_buffer[..rows * h_dim];
                        encode(h, x, rows);
                        matmul_on(
                            result,
                            Mat::new(h, rows, h_dim),
                            p.decoder_matrix(),
                            false,
                            1,
                        );
                        for row in result.chunks_exact_mut(d) {
                            activate_in_place(Activation::Sigmoid, row, p.c);
                        }
                    }
                }
            },
        );
    result
}

pub(crate) fn tensor(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}
