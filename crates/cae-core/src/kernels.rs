//! The one place that decides which implementation runs an operation: this crate's fast CPU
//! kernels or candle's own ops.
//!
//! The fast kernels (the convolutions of [`crate::conv_op`], the deep MLP encoder's exact penalty
//! of [`crate::deep_penalty_op`], the one-layer MLP's fused step
//! and inference of [`crate::fused`]) apply to CPU tensors only; on CUDA and Metal, and whenever a
//! model is built with [`Kernels::CandleOnly`], every operation is candle's. The candle-only path
//! is the reference the fast kernels are tested against.
use candle_core::{DType, Result, Tensor};

use crate::{bias_op, conv_op, deep_penalty_op};

/// Which implementation a model's operations run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kernels {
    /// This crate's CPU kernels wherever they apply (CPU tensors; `f32`, and `f64` for the
    /// convolutions), candle's ops elsewhere. Results agree with [`Kernels::CandleOnly`] to
    /// rounding.
    #[default]
    Fast,
    /// candle's ops for everything: the reference implementation.
    CandleOnly,
}

impl Kernels {
    /// Whether the custom CPU ops (convolutions, the Gram penalty) take `x`: a CPU tensor of `f32`
    /// or `f64`.
    fn fast_op(self, x: &Tensor) -> bool {
        self == Kernels::Fast && x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
    }

    /// Whether the one-layer fused kernels take `x` (a CPU `f32` tensor).
    pub(crate) fn fast_one_layer(self, x: &Tensor) -> bool {
        self == Kernels::Fast && x.device().is_cpu() && x.dtype() == DType::F32
    }

    /// `conv2d(x, w)` with `stride`, no padding: `x [B, C_in, H, W]`, `w [C_out, C_in, K, K]`.
    pub(crate) fn conv2d(self, x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
        if self.fast_op(x) {
            conv_op::conv2d(x, w, stride)
        } else {
            x.conv2d(w, 0, stride, 1, 1)
        }
    }

    /// `conv_transpose2d(x, w)` with `stride`, no padding: `x [B, C_in, H, W]`, `w [C_in, C_out, K, K]`.
    pub(crate) fn conv_transpose2d(self, x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
        if self.fast_op(x) {
            conv_op::conv_transpose2d(x, w, stride)
        } else {
            x.conv_transpose2d(w, 0, 0, stride, 1)
        }
    }

    /// A tangent pass through a convolution layer: `d ⊙ conv2d(t, w)` for the tangents
    /// `t [P·B, C_in, H, W]` of `P` probes per sample (probe-major) and the layer's
    /// `d = g'(a) [B, C_out, H_out, W_out]`, shared by the probes.
    pub(crate) fn scaled_conv2d(
        self,
        t: &Tensor,
        w: &Tensor,
        d: &Tensor,
        stride: usize,
    ) -> Result<Tensor> {
        if self.fast_op(t) {
            return conv_op::scaled_conv2d(t, w, d, stride);
        }
        let z = t.conv2d(w, 0, stride, 1, 1)?;
        let (n, c, h, wd) = z.dims4()?;
        let b = d.dim(0)?;
        z.reshape((n / b, b, c, h, wd))?
            .broadcast_mul(&d.unsqueeze(0)?)?
            .reshape((n, c, h, wd))
    }

    /// `x + b` with one bias per channel: `x [B, C, …]`, `b [C]`.
    pub(crate) fn add_channel_bias(self, x: &Tensor, b: &Tensor) -> Result<Tensor> {
        if self.fast_op(x) {
            return bias_op::add_bias(x, b);
        }
        let mut shape = vec![1; x.rank()];
        shape[1] = b.elem_count();
        x.broadcast_add(&b.reshape(shape)?)
    }

    /// A deep MLP encoder's exact penalty `‖J‖²_F` per sample, `[B]`, from its layers'
    /// derivatives `d_l = g'(a_l) [B, H_l]` and weights `W_l [H_l, H_{l-1}]`, input side first
    /// (two or more layers, the first narrower than the input).
    pub(crate) fn deep_penalty(
        self,
        derivatives: &[Tensor],
        weights: &[&Tensor],
    ) -> Result<Tensor> {
        if derivatives.first().is_some_and(|d| self.fast_op(d)) {
            deep_penalty_op::deep_penalty(derivatives, weights)
        } else {
            deep_penalty_op::deep_penalty_reference(derivatives, weights)
        }
    }
}
