//! A per-channel bias as a candle custom op: `x + b` for `x [B, C, …]`, `b [C]`, in one
//! multi-threaded pass, and its gradient `Σ_{batch, pixels} g` per channel without candle's
//! single-threaded reduction over the batch dimension.
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

use rayon::prelude::*;

use crate::conv_kernel::SAMPLES_PER_TASK;
use crate::cpu_op::{operands, run_kernel, Operands};
use crate::matmul::Element;

/// `x + b` with one bias per channel: `x [B, C, …]`, `b [C]`.
#[derive(Debug, Clone, Copy)]
struct BiasAdd;

/// The per-channel sum of `g [B, C, …]` over everything else, `[C]`: a channel bias's gradient.
#[derive(Debug, Clone, Copy)]
struct ChannelSum;

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

/// `(channels, pixels per channel)` of a `[B, C, …]` tensor.
fn channels_and_pixels(l: &Layout, what: &str) -> Result<(usize, usize)> {
    match l.dims() {
        [_, c, rest @ ..] if *c > 0 => Ok((*c, rest.iter().product())),
        other => candle_core::bail!("{what}: expected [batch, channels, …], got {other:?}"),
    }
}

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "cae-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (channels, pixels) = channels_and_pixels(l1, "bias add")?;
        if l2.dims() != [channels] || pixels == 0 {
            candle_core::bail!("bias {:?} does not fit input {:?}", l2.dims(), l1.dims());
        }
        let out = run_kernel!("bias add", &[(s1, l1), (s2, l2)], |ops| add_channel_bias(
            ops[0], ops[1], pixels
        ));
        Ok((out, l1.shape().clone()))
    }

    fn bwd(
        &self,
        _x: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        gy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let gb = gy.contiguous()?.apply_op1_no_bwd(&ChannelSum)?;
        Ok((Some(gy.clone()), Some(gb)))
    }
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "cae-channel-sum"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let (channels, pixels) = channels_and_pixels(l, "channel sum")?;
        if pixels == 0 {
            candle_core::bail!("channel sum of an empty {:?}", l.dims());
        }
        let out = run_kernel!("channel sum", &[(s, l)], |ops| channel_sums(
            ops[0], channels, pixels
        ));
        Ok((out, channels.into()))
    }
}

/// `x + b` with `b [C]` added to every channel of `x [B, C, …]`, differentiable.
pub(crate) fn add_bias(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd)
}

#[cfg(test)]
mod tests {
    use crate::cpu_op::test_support::compare;
    use candle_core::DType;

    /// The per-block partial sums are added in block order, not in the order threads finish.
    #[test]
    fn channel_sums_do_not_depend_on_the_thread_count() {
        let g: Vec<f32> = (0..37 * 3 * 11)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0)
            .collect();
        let run = |threads| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| super::channel_sums(&g, 3, 11))
        };
        let one = run(1);
        for threads in [2, 3, 8] {
            assert_eq!(one, run(threads), "{threads} threads");
        }
    }

    #[test]
    fn bias_add_and_its_gradients_match_candle() {
        for dtype in [DType::F32, DType::F64] {
            for shape in [&[3usize, 4, 5, 6][..], &[17, 2, 1, 1], &[1, 7, 3]] {
                compare(
                    &format!("bias add {shape:?}"),
                    &[shape, &[shape[1]]],
                    dtype,
                    |a| super::add_bias(&a[0], &a[1]),
                    |a| {
                        let mut b_shape = vec![1; shape.len()];
                        b_shape[1] = shape[1];
                        a[0].broadcast_add(&a[1].reshape(b_shape)?)
                    },
                );
            }
        }
    }
}
