//! The CPU convolution kernels of [`crate::conv_kernel`] as candle custom ops, so that they sit
//! inside candle's graph: `backward()` differentiates through them (each op's gradients are
//! themselves these ops) and the model stays one candle model.
//!
//! They are CPU-only, for `f32` and `f64`; [`crate::kernels`] decides when they are used and falls
//! back to candle's own ops (the reference the tests compare against) everywhere else. Gradients
//! are first-order: the ops that only appear inside a gradient ([`ConvWeightGrad`], the scaled
//! transposed convolution) are not differentiated again, which the CAE's penalty
//! (built from forward ops) never needs. The per-channel bias is [`crate::bias_op`].
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use crate::conv_kernel::{conv_backward_input, conv_backward_weight, conv_forward, ConvShape};
use crate::cpu_op::{dims4, operands, optional, run_kernel, Operands};

/// `conv2d(x, w)` with stride `stride`, no padding: `x [B, C_in, H, W]`, `w [C_out, C_in, K, K]`.
#[derive(Debug, Clone, Copy)]
struct Conv2d {
    stride: usize,
}

/// A tangent pass through a convolution layer: `d ⊙ conv2d(x, w)` for `x [P·B, C_in, H, W]` (the
/// tangents of `P` probes for each of `B` samples, probe-major) and `d [B, C_out, H_out, W_out]`
/// (the layer's `g'(a)`, shared by the probes). One pass, without the unscaled product in memory.
#[derive(Debug, Clone, Copy)]
struct ScaledConv2d {
    stride: usize,
}

/// The transposed convolution `conv_transpose2d(x, w)`, no padding: `x [B, C_in, H, W]`,
/// `w [C_in, C_out, K, K]` → `[B, C_out, height, width]`; as a 3-operand op, `x` is first
/// multiplied by a scale as in [`ScaledConv2d`]. `(height, width)` is at least
/// `((H − 1)·s + K, (W − 1)·s + K)`; a larger size (at most `s − 1` more) is candle's
/// `output_padding`, and is how the gradient of a [`Conv2d`] that dropped edge pixels is shaped.
#[derive(Debug, Clone, Copy)]
struct ConvTranspose2d {
    stride: usize,
    height: usize,
    width: usize,
}

/// The weight gradient of [`Conv2d`]: from `x [B, C_in, H, W]` and `gy [B, C_out, H_out, W_out]`,
/// `Σ_b gy_b ⋆ x_b`, `[C_out, C_in, K, K]` (as a 3-operand op, `gy` scaled first).
#[derive(Debug, Clone, Copy)]
struct ConvWeightGrad {
    stride: usize,
    kernel: usize,
}

/// The shape of a forward convolution of input `x` by weight `w`, checked.
fn conv_shape(x: &Layout, w: &Layout, stride: usize) -> Result<ConvShape> {
    let (batch, in_channels, height, width) = dims4(x, "conv2d input")?;
    let (out_channels, w_in, kernel, kernel_w) = dims4(w, "conv2d weight")?;
    if w_in != in_channels || kernel != kernel_w || kernel == 0 || stride == 0 {
        candle_core::bail!(
            "conv2d: weight {:?} does not fit input {:?} (square kernels, stride {stride})",
            w.dims(),
            x.dims()
        );
    }
    if kernel > height || kernel > width {
        candle_core::bail!("conv2d: kernel {kernel} is larger than the input {height}x{width}");
    }
    Ok(ConvShape {
        batch,
        in_channels,
        out_channels,
        height,
        width,
        kernel,
        stride,
    })
}

/// Checks that `scale` is `[B', C, H, W]` with `(C, H, W)` the per-sample `shape` and `B'`
/// dividing `batch`.
fn check_scale(scale: &Layout, batch: usize, shape: (usize, usize, usize)) -> Result<()> {
    let (b, c, h, w) = dims4(scale, "tangent scale")?;
    if (c, h, w) != shape || b == 0 || batch % b != 0 {
        candle_core::bail!(
            "tangent scale {:?} does not fit a batch of {batch} of {shape:?}",
            scale.dims()
        );
    }
    Ok(())
}

impl Conv2d {
    fn forward(&self, args: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let s = conv_shape(args[0].1, args[1].1, self.stride)?;
        let out_shape = (s.out_channels, s.out_height(), s.out_width());
        if let Some((_, scale)) = args.get(2) {
            check_scale(scale, s.batch, out_shape)?;
        }
        let out = run_kernel!("conv2d", args, |ops| conv_forward(
            &s,
            ops[0],
            ops[1],
            optional(&ops, 2)
        ));
        Ok((out, (s.batch, out_shape.0, out_shape.1, out_shape.2).into()))
    }
}

/// The gradients of `conv2d(x, w)` (scaled by `d` when given) with respect to `x` and `w`, given
/// that of its output. The input's is skipped when nothing upstream of `x` needs it (the image
/// batch, the Hutchinson probes): for the conv preset, the two widest input gradients of a step.
fn conv2d_grads(
    x: &Tensor,
    w: &Tensor,
    d: Option<&Tensor>,
    gy: &Tensor,
    stride: usize,
) -> Result<(Option<Tensor>, Tensor)> {
    let gy = gy.contiguous()?;
    let (_, _, height, width) = x.dims4()?;
    let transpose = ConvTranspose2d {
        stride,
        height,
        width,
    };
    let weight_grad = ConvWeightGrad {
        stride,
        kernel: w.dim(2)?,
    };
    let gx = match (x.track_op(), d) {
        (false, _) => None,
        (true, None) => Some(gy.apply_op2(w, transpose)?),
        (true, Some(d)) => Some(gy.apply_op3_no_bwd(w, d, &transpose)?),
    };
    let gw = match d {
        None => x.apply_op2_no_bwd(&gy, &weight_grad)?,
        Some(d) => x.apply_op3_no_bwd(&gy, d, &weight_grad)?,
    };
    Ok((gx, gw))
}

impl CustomOp2 for Conv2d {
    fn name(&self) -> &'static str {
        "cae-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(&[(s1, l1), (s2, l2)])
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (gx, gw) = conv2d_grads(x, w, None, gy, self.stride)?;
        Ok((gx, Some(gw)))
    }
}

impl CustomOp3 for ScaledConv2d {
    fn name(&self) -> &'static str {
        "cae-scaled-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Conv2d {
            stride: self.stride,
        }
        .forward(&[(s1, l1), (s2, l2), (s3, l3)])
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        d: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (gx, gw) = conv2d_grads(x, w, Some(d), gy, self.stride)?;
        // `d` is a constant for ReLU layers (its derivative is a step); otherwise
        // ∂/∂d = Σ_probes gy ⊙ conv(x, w), the product recomputed rather than kept.
        let gd = if d.track_op() {
            let z = x.apply_op2(
                w,
                Conv2d {
                    stride: self.stride,
                },
            )?;
            let (n, c, h, wd) = z.dims4()?;
            let b = d.dim(0)?;
            Some((gy * z)?.reshape((n / b, b, c, h, wd))?.sum(0)?)
        } else {
            None
        };
        Ok((gx, Some(gw), gd))
    }
}

impl ConvTranspose2d {
    fn forward(&self, args: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        // As the input gradient of a convolution from `[B, C_out, height, width]` to `x`.
        let (l1, l2) = (args[0].1, args[1].1);
        let (batch, in_channels, h, w) = dims4(l1, "conv_transpose2d input")?;
        let (w_in, out_channels, kernel, kernel_w) = dims4(l2, "conv_transpose2d weight")?;
        let st = self.stride;
        let fits = w_in == in_channels
            && kernel == kernel_w
            && kernel > 0
            && st > 0
            && h > 0
            && w > 0
            && self.height >= (h - 1) * st + kernel
            && self.height < (h - 1) * st + kernel + st
            && self.width >= (w - 1) * st + kernel
            && self.width < (w - 1) * st + kernel + st;
        if !fits {
            candle_core::bail!(
                "conv_transpose2d: weight {:?} and output {}x{} do not fit input {:?} at stride {st}",
                l2.dims(),
                self.height,
                self.width,
                l1.dims()
            );
        }
        if let Some((_, scale)) = args.get(2) {
            check_scale(scale, batch, (in_channels, h, w))?;
        }
        let s = ConvShape {
            batch,
            in_channels: out_channels,
            out_channels: in_channels,
            height: self.height,
            width: self.width,
            kernel,
            stride: st,
        };
        let out = run_kernel!("conv_transpose2d", args, |ops| conv_backward_input(
            &s,
            ops[0],
            ops[1],
            optional(&ops, 2)
        ));
        Ok((out, (batch, out_channels, self.height, self.width).into()))
    }
}

impl CustomOp2 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "cae-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(&[(s1, l1), (s2, l2)])
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let gy = gy.contiguous()?;
        // The adjoint of a transposed convolution is the convolution by the same weight.
        let stride = self.stride;
        let gx = gy.apply_op2(w, Conv2d { stride })?;
        let weight_grad = ConvWeightGrad {
            stride,
            kernel: w.dim(2)?,
        };
        let gw = gy.apply_op2_no_bwd(x, &weight_grad)?;
        Ok((Some(gx), Some(gw)))
    }
}

impl CustomOp3 for ConvTranspose2d {
    fn name(&self) -> &'static str {
        "cae-scaled-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(&[(s1, l1), (s2, l2), (s3, l3)])
    }
}

impl ConvWeightGrad {
    fn forward(&self, args: &[(&CpuStorage, &Layout)]) -> Result<(CpuStorage, Shape)> {
        let (l1, l2) = (args[0].1, args[1].1);
        let (batch, in_channels, height, width) = dims4(l1, "conv2d input")?;
        let (gy_batch, out_channels, out_h, out_w) = dims4(l2, "conv2d output gradient")?;
        let (k, st) = (self.kernel, self.stride);
        let s = ConvShape {
            batch,
            in_channels,
            out_channels,
            height,
            width,
            kernel: k,
            stride: st,
        };
        if gy_batch != batch
            || k == 0
            || st == 0
            || k > height
            || k > width
            || (s.out_height(), s.out_width()) != (out_h, out_w)
        {
            candle_core::bail!(
                "conv2d weight gradient: output gradient {:?} does not fit input {:?} (kernel {k}, stride {st})",
                l2.dims(),
                l1.dims()
            );
        }
        if let Some((_, scale)) = args.get(2) {
            check_scale(scale, batch, (out_channels, out_h, out_w))?;
        }
        let out = run_kernel!("conv2d weight gradient", args, |ops| {
            conv_backward_weight(&s, ops[0], ops[1], optional(&ops, 2))
        });
        Ok((out, (out_channels, in_channels, k, k).into()))
    }
}

impl CustomOp2 for ConvWeightGrad {
    fn name(&self) -> &'static str {
        "cae-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(&[(s1, l1), (s2, l2)])
    }
}

impl CustomOp3 for ConvWeightGrad {
    fn name(&self) -> &'static str {
        "cae-scaled-conv2d-weight-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        self.forward(&[(s1, l1), (s2, l2), (s3, l3)])
    }
}

/// `conv2d(x, w)` through the fast kernel, differentiable. `x` and `w` must be CPU tensors of one
/// float dtype (`f32` or `f64`).
pub(crate) fn conv2d(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    x.contiguous()?
        .apply_op2(&w.contiguous()?, Conv2d { stride })
}

/// `d ⊙ conv2d(x, w)` for `P` probes per sample (`x [P·B, …]`, `d [B, …]`) through the fast kernel,
/// differentiable.
pub(crate) fn scaled_conv2d(x: &Tensor, w: &Tensor, d: &Tensor, stride: usize) -> Result<Tensor> {
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &d.contiguous()?, ScaledConv2d { stride })
}

/// `conv_transpose2d(x, w)` (no padding, no output padding) through the fast kernel, differentiable.
pub(crate) fn conv_transpose2d(x: &Tensor, w: &Tensor, stride: usize) -> Result<Tensor> {
    let (_, _, h, wd) = x.dims4()?;
    let kernel = w.dim(2)?;
    let op = ConvTranspose2d {
        stride,
        height: (h.max(1) - 1) * stride + kernel,
        width: (wd.max(1) - 1) * stride + kernel,
    };
    x.contiguous()?.apply_op2(&w.contiguous()?, op)
}

#[cfg(test)]
mod tests {
    use crate::cpu_op::test_support::compare;
    use candle_core::{DType, Device, Tensor};

    /// `(batch, in channels, out channels, height, width, kernel, stride)`: every layer of the
    /// conv preset (encoder, and its decoder as transposed convolutions) and odd sizes.
    const CASES: [(usize, usize, usize, usize, usize, usize, usize); 9] = [
        (3, 1, 8, 28, 28, 3, 1),
        (3, 8, 16, 26, 26, 5, 1),
        (2, 16, 32, 22, 22, 5, 2),
        (2, 32, 64, 9, 9, 2, 2),
        (2, 64, 16, 4, 4, 3, 2),
        (2, 16, 8, 9, 9, 5, 2),
        (2, 8, 1, 21, 21, 8, 1),
        (5, 3, 2, 7, 10, 3, 3),
        (1, 2, 3, 6, 5, 4, 1),
    ];

    #[test]
    fn conv2d_and_its_gradients_match_candle() {
        for dtype in [DType::F32, DType::F64] {
            for (b, ci, co, h, w, k, s) in CASES {
                compare(
                    &format!("conv2d {:?}", (b, ci, co, h, w, k, s)),
                    &[&[b, ci, h, w], &[co, ci, k, k]],
                    dtype,
                    |a| super::conv2d(&a[0], &a[1], s),
                    |a| a[0].conv2d(&a[1], 0, s, 1, 1),
                );
            }
        }
    }

    #[test]
    fn conv_transpose2d_and_its_gradients_match_candle() {
        for dtype in [DType::F32, DType::F64] {
            for (b, ci, co, h, w, k, s) in CASES {
                compare(
                    &format!("conv_transpose2d {:?}", (b, ci, co, h, w, k, s)),
                    &[&[b, ci, h, w], &[ci, co, k, k]],
                    dtype,
                    |a| super::conv_transpose2d(&a[0], &a[1], s),
                    |a| a[0].conv_transpose2d(&a[1], 0, 0, s, 1),
                );
            }
        }
    }

    /// Three probes per sample; the scale is a variable here, so its gradient (the path taken
    /// for activations other than ReLU) is checked too.
    #[test]
    fn scaled_conv2d_and_its_gradients_match_candle() {
        const PROBES: usize = 3;
        for dtype in [DType::F32, DType::F64] {
            for (b, ci, co, h, w, k, s) in CASES {
                let (oh, ow) = ((h - k) / s + 1, (w - k) / s + 1);
                compare(
                    &format!("scaled conv2d {:?}", (b, ci, co, h, w, k, s)),
                    &[&[PROBES * b, ci, h, w], &[co, ci, k, k], &[b, co, oh, ow]],
                    dtype,
                    |a| super::scaled_conv2d(&a[0], &a[1], &a[2], s),
                    |a| {
                        a[0].conv2d(&a[1], 0, s, 1, 1)?
                            .reshape((PROBES, b, co, oh, ow))?
                            .broadcast_mul(&a[2].unsqueeze(0)?)?
                            .reshape((PROBES * b, co, oh, ow))
                    },
                );
            }
        }
    }

    #[test]
    fn misfitting_operands_are_errors_not_panics() {
        let x = Tensor::zeros((2, 3, 5, 5), DType::F32, &Device::Cpu).unwrap();
        let wrong_channels = Tensor::zeros((4, 2, 3, 3), DType::F32, &Device::Cpu).unwrap();
        assert!(super::conv2d(&x, &wrong_channels, 1).is_err());
        let too_big = Tensor::zeros((4, 3, 6, 6), DType::F32, &Device::Cpu).unwrap();
        assert!(super::conv2d(&x, &too_big, 1).is_err());
        let mixed = Tensor::zeros((4, 3, 3, 3), DType::F64, &Device::Cpu).unwrap();
        assert!(super::conv2d(&x, &mixed, 1).is_err());
    }
}
