//! One step of a deep MLP encoder's Jacobian rows, from the code side towards the input, as a
//! candle custom op: `Y = (M ⊙ d) W` for the rows `M [B, C, H]` of every sample, that layer's
//! `g'(a) = d [B, H]` (repeated over the `C` rows of a sample) and its weight `W [H, K]`.
//!
//! The `B·C` rows make one tall product, `(B·C)×H×K`, on `gemm`'s threads; the gradients are two
//! more (`∂P = ∂Y Wᵀ`, `∂W = Pᵀ ∂Y`, with `P = M ⊙ d`) and one element-wise pass over `∂P` for
//! `∂M = ∂P ⊙ d` and `∂d_b = Σ_c ∂P_bc ⊙ m_bc`. candle's ops take the same products but a
//! broadcast multiply, a reshape copy and a reduction over the batch around them, each a pass over
//! `[B, C, H]` on one thread.
use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use crate::cpu_op::{contiguous, with_slice};
use crate::matmul::{matmul, Element};

const NAME: &str = "scaled rows product";

/// `(M ⊙ d) W` for `M [B, C, H]`, `d [B, H]`, `W [H, K]`.
#[derive(Debug, Clone, Copy)]
struct ScaledRowsProduct;

/// `P = M ⊙ d` (d repeated over the `rows` rows of each sample), multi-threaded over samples.
pub(crate) fn scaled_rows<T: Element>(m: &[T], d: &[T], rows: usize, width: usize) -> Vec<T> {
    let mut p = m.to_vec();
    p.par_chunks_mut(rows * width)
        .zip(d.par_chunks(width))
        .for_each(|(pb, db)| {
            for row in pb.chunks_mut(width) {
                row.iter_mut().zip(db).for_each(|(v, &s)| *v = *v * s);
            }
        });
    p
}

/// `(∂M, ∂d)` from `∂P`: `∂M = ∂P ⊙ d`, `∂d_b = Σ_c ∂P_bc ⊙ m_bc`, multi-threaded over samples.
pub(crate) fn unscale_rows<T: Element>(
    dp: &[T],
    m: &[T],
    d: &[T],
    rows: usize,
    width: usize,
) -> (Vec<T>, Vec<T>) {
    let mut dm = vec![T::ZERO; m.len()];
    let mut dd = vec![T::ZERO; d.len()];
    let sample = rows * width;
    dm.par_chunks_mut(sample)
        .zip(dd.par_chunks_mut(width))
        .zip(dp.par_chunks(sample).zip(m.par_chunks(sample)))
        .zip(d.par_chunks(width))
        .for_each(|(((dmb, ddb), (dpb, mb)), db)| {
            for ((dm_row, dp_row), m_row) in dmb
                .chunks_mut(width)
                .zip(dpb.chunks(width))
                .zip(mb.chunks(width))
            {
                for i in 0..width {
                    dm_row[i] = dp_row[i] * db[i];
                    ddb[i] += dp_row[i] * m_row[i];
                }
            }
        });
    (dm, dd)
}

fn forward<T: Element>(m: &[T], d: &[T], w: &[T], rows: usize, width: usize) -> Vec<T> {
    let n = m.len() / width;
    let k = w.len() / width;
    let p = scaled_rows(m, d, rows, width);
    let mut y = vec![T::ZERO; n * k];
    let threads = rayon::current_num_threads();
    matmul(&mut y, &p, false, w, false, (n, width, k), false, threads);
    y
}

/// `(∂M, ∂d, ∂W)` from the upstream gradient `∂Y [B·C, K]`.
fn backward<T: Element>(
    m: &[T],
    d: &[T],
    w: &[T],
    dy: &[T],
    rows: usize,
    width: usize,
) -> (Vec<T>, Vec<T>, Vec<T>) {
    let n = m.len() / width;
    let k = w.len() / width;
    let threads = rayon::current_num_threads();
    // ∂P = ∂Y Wᵀ: `w` stored [H, K] is Wᵀ stored transposed.
    let mut dp = vec![T::ZERO; n * width];
    matmul(&mut dp, dy, false, w, true, (n, k, width), false, threads);
    let (dm, dd) = unscale_rows(&dp, m, d, rows, width);
    // ∂W = Pᵀ ∂Y: `p` stored [B·C, H] is Pᵀ stored transposed.
    let p = scaled_rows(m, d, rows, width);
    let mut dw = vec![T::ZERO; width * k];
    matmul(&mut dw, &p, true, dy, false, (width, n, k), false, threads);
    (dm, dd, dw)
}

/// `(B, C, H, K)` of the operands, or an error naming their shapes.
fn sizes(m: &Layout, d: &Layout, w: &Layout) -> Result<(usize, usize, usize, usize)> {
    match (m.dims(), d.dims(), w.dims()) {
        (&[b, c, h], &[b2, h2], &[h3, k]) if b == b2 && h == h2 && h == h3 && c * h * k > 0 => {
            Ok((b, c, h, k))
        }
        _ => candle_core::bail!(
            "{NAME}: rows {:?}, scale {:?} and weight {:?} do not fit",
            m.dims(),
            d.dims(),
            w.dims()
        ),
    }
}

impl ScaledRowsProduct {
    fn grads<T: Element + WithDType>(
        m: &Tensor,
        d: &Tensor,
        w: &Tensor,
        dy: &Tensor,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (batch, rows, width) = m.dims3()?;
        let k = w.dim(1)?;
        let (dm, dd, dw) = with_slice::<T, _>(m, |m| {
            with_slice::<T, _>(d, |d| {
                with_slice::<T, _>(w, |w| {
                    with_slice::<T, _>(dy, |dy| Ok(backward(m, d, w, dy, rows, width)))
                })
            })
        })?;
        let device = m.device();
        Ok((
            Tensor::from_vec(dm, (batch, rows, width), device)?,
            Tensor::from_vec(dd, (batch, width), device)?,
            Tensor::from_vec(dw, (width, k), device)?,
        ))
    }
}

impl CustomOp3 for ScaledRowsProduct {
    fn name(&self) -> &'static str {
        "cae-scaled-rows-product"
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
        let (batch, rows, width, k) = sizes(l1, l2, l3)?;
        let out = match (s1, s2, s3) {
            (CpuStorage::F32(_), CpuStorage::F32(_), CpuStorage::F32(_)) => {
                CpuStorage::F32(forward::<f32>(
                    contiguous(s1, l1, NAME)?,
                    contiguous(s2, l2, NAME)?,
                    contiguous(s3, l3, NAME)?,
                    rows,
                    width,
                ))
            }
            (CpuStorage::F64(_), CpuStorage::F64(_), CpuStorage::F64(_)) => {
                CpuStorage::F64(forward::<f64>(
                    contiguous(s1, l1, NAME)?,
                    contiguous(s2, l2, NAME)?,
                    contiguous(s3, l3, NAME)?,
                    rows,
                    width,
                ))
            }
            _ => candle_core::bail!("{NAME}: operands must be all f32 or all f64"),
        };
        Ok((out, (batch, rows, k).into()))
    }

    fn bwd(
        &self,
        m: &Tensor,
        d: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dm, dd, dw) = match m.dtype() {
            candle_core::DType::F32 => Self::grads::<f32>(m, d, w, dy)?,
            candle_core::DType::F64 => Self::grads::<f64>(m, d, w, dy)?,
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        Ok((Some(dm), Some(dd), Some(dw)))
    }
}

/// `(M ⊙ d) W` per sample, `[B, C, K]`, differentiable; `M [B, C, H]`, `d [B, H]`, `W [H, K]`,
/// CPU tensors of one float dtype.
pub(crate) fn scaled_rows_product(m: &Tensor, d: &Tensor, w: &Tensor) -> Result<Tensor> {
    m.contiguous()?
        .apply_op3(&d.contiguous()?, &w.contiguous()?, ScaledRowsProduct)
}

/// The same with candle's ops: the reference.
pub(crate) fn scaled_rows_product_reference(m: &Tensor, d: &Tensor, w: &Tensor) -> Result<Tensor> {
    let (b, c, h) = m.dims3()?;
    m.broadcast_mul(&d.unsqueeze(1)?)?
        .reshape((b * c, h))?
        .matmul(w)?
        .reshape((b, c, w.dim(1)?))
}

#[cfg(test)]
mod tests {
    use super::NAME;
    use crate::cpu_op::test_support::compare;
    use candle_core::DType;

    /// The value and every gradient against candle's ops, at odd sizes, on 1, 2 and 3 threads
    /// (the products split their rows between threads, the scaling splits samples).
    #[test]
    fn value_and_gradients_match_candle() {
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for dtype in [DType::F32, DType::F64] {
                    for (b, c, h, k) in
                        [(5, 3, 7, 11), (3, 32, 128, 67), (1, 1, 1, 1), (9, 2, 33, 5)]
                    {
                        compare(
                            &format!("{NAME} {:?} on {threads} threads", (b, c, h, k)),
                            &[&[b, c, h], &[b, h], &[h, k]],
                            dtype,
                            |a| super::scaled_rows_product(&a[0], &a[1], &a[2]),
                            |a| super::scaled_rows_product_reference(&a[0], &a[1], &a[2]),
                        );
                    }
                }
            });
        }
    }
}
