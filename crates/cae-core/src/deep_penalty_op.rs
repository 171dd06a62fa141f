//! A deep MLP encoder's exact Jacobian penalty `‖J_b‖²_F`, rows and Gram matrix together, as one
//! candle custom op with hand-derived gradients.
//!
//! For layers `l = 1..L` with weights `W_l [H_l, H_{l-1}]` and derivatives `d_l = g'(a_l) [B, H_l]`,
//! `J_b = D_L W_L ⋯ D_1 W_1`. The rows are multiplied from the code side (`C = H_L` of them per
//! sample): `R_{L-1} = D_L W_L`, `R_{l-1} = (R_l ⊙ d_l) W_l` down to `P = R_1 ⊙ d_1`, each step one
//! tall `(B·C)×H_l×H_{l-1}` product; then `‖J_b‖² = Σ_c p_bc G p_bcᵀ` with `G = W_1 W_1ᵀ` (formed
//! once, symmetric), `C·H_1²` multiply-adds per sample instead of `C·H_1·H_0`. The gradients walk
//! back the same way: `∂P = 2 g_b P G`, `2 ∂G = Σ_b 2 g_b P_bᵀ P_b` (symmetric), `∂W_1 = 2 ∂G W_1`,
//! and through each rows step `∂(R_l ⊙ d_l) = ∂R_{l-1} W_lᵀ`, `∂W_l = (R_l ⊙ d_l)ᵀ ∂R_{l-1}`.
//!
//! One op rather than one per step: the rows `[B, C, H_1]` and their gradient never become candle
//! tensors, which candle's backward pass would zero, add and keep (three passes over the largest
//! arrays of the step). The op takes every layer's derivatives as one `[B, Σ H_l]` tensor and every
//! weight as one flat tensor, since candle's custom ops take at most three operands.
use std::any::Any;
use std::sync::Mutex;

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, WithDType};
use rayon::prelude::*;

use crate::cpu_op::{contiguous, with_slice};
use crate::matmul::{matmul, symmetric_at_b, Element};

const NAME: &str = "deep penalty";

/// `‖J_b‖²_F` per sample of an encoder with layer widths `widths = [H_0, …, H_L]`.
#[derive(Debug)]
struct DeepPenalty {
    widths: Vec<usize>,
    /// [`Saved`] by the forward pass (of `f32` or `f64`), for the gradients.
    saved: Mutex<Option<Box<dyn Any + Send>>>,
}

/// What the forward pass keeps: for every rows step `l = L-1..1`, the rows `R_l` and `R_l ⊙ d_l`
/// (`scaled[0]` is `P`), and `P G`.
struct Saved<T> {
    rows: Vec<Vec<T>>,
    scaled: Vec<Vec<T>>,
    pg: Vec<T>,
}

/// Where layer `l`'s (1-based) derivatives and weight start in the packed operands.
struct Offsets {
    d: Vec<usize>,
    w: Vec<usize>,
}

impl DeepPenalty {
    fn offsets(&self) -> Offsets {
        let (mut d, mut w) = (vec![0], vec![0]);
        for l in 1..self.widths.len() {
            d.push(d[l - 1] + self.widths[l]);
            w.push(w[l - 1] + self.widths[l] * self.widths[l - 1]);
        }
        Offsets { d, w }
    }

    /// The code's width `C`.
    fn code(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }
}

/// `d`'s block of layer `l` for every sample, copied out of the packed `[B, Σ H_l]` derivatives.
/// `Σ a_i b_i`, accumulated in order (the same sum whatever the thread count).
fn dot<T: Element>(a: &[T], b: &[T]) -> T {
    let mut acc = T::ZERO;
    a.iter().zip(b).for_each(|(&x, &y)| acc += x * y);
    acc
}

fn layer_derivatives<T: Element>(d: &[T], total: usize, start: usize, width: usize) -> Vec<T> {
    d.chunks(total)
        .flat_map(|row| row[start..start + width].iter().copied())
        .collect()
}

/// `R ⊙ d` with `d [B, H]` repeated over the `C` rows of each sample.
fn scale_rows<T: Element>(r: &[T], d: &[T], rows: usize, width: usize) -> Vec<T> {
    let mut p = r.to_vec();
    p.par_chunks_mut(rows * width)
        .zip(d.par_chunks(width))
        .for_each(|(pb, db)| {
            for row in pb.chunks_mut(width) {
                row.iter_mut().zip(db).for_each(|(v, &s)| *v = *v * s);
            }
        });
    p
}

/// `∂R = ∂S ⊙ d` and `∂d_b = Σ_c ∂S_bc ⊙ r_bc` for `S = R ⊙ d`.
fn unscale_rows<T: Element>(
    ds: &[T],
    r: &[T],
    d: &[T],
    rows: usize,
    width: usize,
) -> (Vec<T>, Vec<T>) {
    let sample = rows * width;
    let mut dr = vec![T::ZERO; r.len()];
    let mut dd = vec![T::ZERO; d.len()];
    dr.par_chunks_mut(sample)
        .zip(dd.par_chunks_mut(width))
        .zip(ds.par_chunks(sample).zip(r.par_chunks(sample)))
        .zip(d.par_chunks(width))
        .for_each(|(((drb, ddb), (dsb, rb)), db)| {
            for ((dr_row, ds_row), r_row) in drb
                .chunks_mut(width)
                .zip(dsb.chunks(width))
                .zip(rb.chunks(width))
            {
                for i in 0..width {
                    dr_row[i] = ds_row[i] * db[i];
                    ddb[i] += ds_row[i] * r_row[i];
                }
            }
        });
    (dr, dd)
}

/// `G = W Wᵀ` for `W [H, D]` row-major: `Wᵀ` copied row-major, then its symmetric `aᵀ a`.
fn gram<T: Element>(w: &[T], width: usize) -> Vec<T> {
    let input = w.len() / width;
    let mut wt = vec![T::ZERO; w.len()];
    for (i, row) in w.chunks(input).enumerate() {
        for (j, &v) in row.iter().enumerate() {
            wt[j * width + i] = v;
        }
    }
    let mut g = vec![T::ZERO; width * width];
    symmetric_at_b(&mut g, &wt, &wt, width, rayon::current_num_threads());
    g
}

impl DeepPenalty {
    fn forward<T: Element>(&self, d: &[T], w: &[T]) -> (Vec<T>, Saved<T>) {
        let h = &self.widths;
        let last = h.len() - 1;
        let (c, total) = (self.code(), h[1..].iter().sum::<usize>());
        let batch = d.len() / total;
        let off = self.offsets();
        let threads = rayon::current_num_threads();
        // R_{L-1} = D_L W_L: row c of sample b is d_L[b, c] · W_L[c, :].
        let d_last = layer_derivatives(d, total, off.d[last - 1], c);
        let w_last = &w[off.w[last - 1]..off.w[last]];
        let width = h[last - 1];
        let mut r = vec![T::ZERO; batch * c * width];
        r.par_chunks_mut(c * width)
            .zip(d_last.par_chunks(c))
            .for_each(|(rb, db)| {
                for ((row, w_row), &s) in rb.chunks_mut(width).zip(w_last.chunks(width)).zip(db) {
                    row.iter_mut().zip(w_row).for_each(|(o, &v)| *o = s * v);
                }
            });
        let (mut rows, mut scaled) = (Vec::new(), Vec::new());
        for l in (1..last).rev() {
            // Layer l (1-based) has derivatives d_l and weight W_l [H_l, H_{l-1}]; the rows are H_l wide.
            let d_l = layer_derivatives(d, total, off.d[l - 1], h[l]);
            let s = scale_rows(&r, &d_l, c, h[l]);
            if l > 1 {
                let w_l = &w[off.w[l - 1]..off.w[l]];
                let mut next = vec![T::ZERO; batch * c * h[l - 1]];
                matmul(
                    &mut next,
                    &s,
                    false,
                    w_l,
                    false,
                    (batch * c, h[l], h[l - 1]),
                    false,
                    threads,
                );
                rows.push(std::mem::replace(&mut r, next));
            } else {
                rows.push(std::mem::take(&mut r));
            }
            scaled.push(s);
        }
        // Now scaled.last() is P = R_1 ⊙ d_1, [B·C, H_1].
        let w1 = &w[..off.w[1]];
        let g = gram(w1, h[1]);
        // invariant: `new` refuses fewer than two layers, so the loop above ran at least once.
        let p = scaled.last().expect("a rows step");
        let mut pg = vec![T::ZERO; p.len()];
        matmul(
            &mut pg,
            p,
            false,
            &g,
            false,
            (batch * c, h[1], h[1]),
            false,
            threads,
        );
        let sample = c * h[1];
        let value = p
            .par_chunks(sample)
            .zip(pg.par_chunks(sample))
            .map(|(pb, qb)| dot(pb, qb))
            .collect();
        (value, Saved { rows, scaled, pg })
    }

    /// `(∂d, ∂w)`, packed as the operands, from the upstream gradient `gr [B]`.
    fn backward<T: Element>(
        &self,
        d: &[T],
        w: &[T],
        saved: &Saved<T>,
        gr: &[T],
    ) -> (Vec<T>, Vec<T>) {
        let h = &self.widths;
        let last = h.len() - 1;
        let (c, total) = (self.code(), h[1..].iter().sum::<usize>());
        let batch = d.len() / total;
        let off = self.offsets();
        let threads = rayon::current_num_threads();
        let mut dd = vec![T::ZERO; d.len()];
        let mut dw = vec![T::ZERO; w.len()];
        let mut put_dd = |l: usize, dd_l: &[T]| {
            for (row, src) in dd.chunks_mut(total).zip(dd_l.chunks(h[l])) {
                row[off.d[l - 1]..off.d[l]].copy_from_slice(src);
            }
        };
        let mut two = T::ONE;
        two += T::ONE;
        // ∂P = 2 g_b (P G)_b, and Q = 2 g_b P_b for 2 ∂G = Pᵀ Q.
        let sample = c * h[1];
        let p = &saved.scaled[saved.scaled.len() - 1];
        let mut ds = vec![T::ZERO; p.len()];
        let mut q = vec![T::ZERO; p.len()];
        ds.par_chunks_mut(sample)
            .zip(q.par_chunks_mut(sample))
            .zip(saved.pg.par_chunks(sample).zip(p.par_chunks(sample)))
            .zip(gr.par_iter())
            .for_each(|(((dsb, qb), (pgb, pb)), &g)| {
                let s = two * g;
                dsb.iter_mut().zip(pgb).for_each(|(o, &v)| *o = s * v);
                qb.iter_mut().zip(pb).for_each(|(o, &v)| *o = s * v);
            });
        let mut dg2 = vec![T::ZERO; h[1] * h[1]];
        symmetric_at_b(&mut dg2, p, &q, h[1], threads);
        drop(q);
        // ∂W_1 = (∂G + ∂Gᵀ) W_1 = 2 ∂G W_1.
        matmul(
            &mut dw[..off.w[1]],
            &dg2,
            false,
            &w[..off.w[1]],
            false,
            (h[1], h[1], h[0]),
            false,
            threads,
        );
        // Back through the rows steps, l = 1..L-1: ds is ∂(R_l ⊙ d_l).
        for (i, l) in (1..last).enumerate() {
            let k = saved.rows.len() - 1 - i;
            let d_l = layer_derivatives(d, total, off.d[l - 1], h[l]);
            let (dr, dd_l) = unscale_rows(&ds, &saved.rows[k], &d_l, c, h[l]);
            put_dd(l, &dd_l);
            if l + 1 < last {
                // R_l = S_{l+1} W_{l+1}: ∂S_{l+1} = ∂R_l W_{l+1}ᵀ, ∂W_{l+1} = S_{l+1}ᵀ ∂R_l.
                let w_next = &w[off.w[l]..off.w[l + 1]];
                let s_next = &saved.scaled[k - 1];
                let n = batch * c;
                let mut ds_next = vec![T::ZERO; n * h[l + 1]];
                matmul(
                    &mut ds_next,
                    &dr,
                    false,
                    w_next,
                    true,
                    (n, h[l], h[l + 1]),
                    false,
                    threads,
                );
                matmul(
                    &mut dw[off.w[l]..off.w[l + 1]],
                    s_next,
                    true,
                    &dr,
                    false,
                    (h[l + 1], n, h[l]),
                    false,
                    threads,
                );
                ds = ds_next;
            } else {
                // R_{L-1} = D_L W_L: ∂d_L[b, c] = ∂R[b, c, :] · W_L[c, :], ∂W_L[c, :] = Σ_b d_L[b, c] ∂R[b, c, :].
                let width = h[l];
                let w_last = &w[off.w[l]..off.w[l + 1]];
                let d_last = layer_derivatives(d, total, off.d[last - 1], c);
                let dd_last: Vec<T> = dr
                    .par_chunks(c * width)
                    .flat_map_iter(|rb| {
                        rb.chunks(width)
                            .zip(w_last.chunks(width))
                            .map(|(r_row, w_row)| dot(r_row, w_row))
                    })
                    .collect();
                put_dd(last, &dd_last);
                dw[off.w[l]..off.w[l + 1]]
                    .par_chunks_mut(width)
                    .enumerate()
                    .for_each(|(row, out)| {
                        for (rb, db) in dr.chunks(c * width).zip(d_last.chunks(c)) {
                            let s = db[row];
                            let r_row = &rb[row * width..(row + 1) * width];
                            out.iter_mut().zip(r_row).for_each(|(o, &v)| *o += s * v);
                        }
                    });
            }
        }
        (dd, dw)
    }
}

impl CustomOp2 for DeepPenalty {
    fn name(&self) -> &'static str {
        "cae-deep-penalty"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let total: usize = self.widths[1..].iter().sum();
        let weights = self.offsets().w[self.widths.len() - 1];
        let batch = match (l1.dims(), l2.dims()) {
            (&[b, t], &[n]) if t == total && n == weights => b,
            _ => candle_core::bail!(
                "{NAME}: derivatives {:?} and weights {:?} do not fit layer widths {:?}",
                l1.dims(),
                l2.dims(),
                self.widths
            ),
        };
        let mut cached = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        let out = match (s1, s2) {
            (CpuStorage::F32(_), CpuStorage::F32(_)) => {
                let (d, w) = (contiguous(s1, l1, NAME)?, contiguous(s2, l2, NAME)?);
                let (r, saved) = self.forward::<f32>(d, w);
                *cached = Some(Box::new(saved));
                CpuStorage::F32(r)
            }
            (CpuStorage::F64(_), CpuStorage::F64(_)) => {
                let (d, w) = (contiguous(s1, l1, NAME)?, contiguous(s2, l2, NAME)?);
                let (r, saved) = self.forward::<f64>(d, w);
                *cached = Some(Box::new(saved));
                CpuStorage::F64(r)
            }
            _ => candle_core::bail!("{NAME}: operands must be both f32 or both f64"),
        };
        Ok((out, batch.into()))
    }

    fn bwd(
        &self,
        d: &Tensor,
        w: &Tensor,
        _r: &Tensor,
        gr: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (dd, dw) = match d.dtype() {
            candle_core::DType::F32 => self.grads::<f32>(d, w, gr)?,
            candle_core::DType::F64 => self.grads::<f64>(d, w, gr)?,
            other => candle_core::bail!("{NAME}: unsupported dtype {other:?}"),
        };
        Ok((Some(dd), Some(dw)))
    }
}

impl DeepPenalty {
    fn grads<T: Element + WithDType>(
        &self,
        d: &Tensor,
        w: &Tensor,
        gr: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let cached = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        let Some(saved) = cached.as_ref().and_then(|s| s.downcast_ref::<Saved<T>>()) else {
            candle_core::bail!("{NAME}: backward without a forward pass of this dtype");
        };
        let (dd, dw) = with_slice::<T, _>(d, |d| {
            with_slice::<T, _>(w, |w| {
                with_slice::<T, _>(gr, |gr| Ok(self.backward(d, w, saved, gr)))
            })
        })?;
        Ok((
            Tensor::from_vec(dd, d.shape(), d.device())?,
            Tensor::from_vec(dw, w.shape(), w.device())?,
        ))
    }
}

/// Per-sample `‖J‖²_F`, `[B]`, differentiable, of an encoder of two or more layers with weights
/// `W_l [H_l, H_{l-1}]` and derivatives `d_l [B, H_l]` (`l = 1..L`, input side first); CPU tensors
/// of one float dtype.
pub(crate) fn deep_penalty(derivatives: &[Tensor], weights: &[&Tensor]) -> Result<Tensor> {
    let widths = widths(derivatives, weights)?;
    let d = Tensor::cat(derivatives, 1)?;
    let flat: Vec<Tensor> = weights
        .iter()
        .map(|w| w.flatten_all())
        .collect::<Result<_>>()?;
    let w = Tensor::cat(&flat, 0)?;
    let op = DeepPenalty {
        widths,
        saved: Mutex::new(None),
    };
    d.contiguous()?.apply_op2(&w.contiguous()?, op)
}

/// `[H_0, …, H_L]`, checked against the derivatives.
fn widths(derivatives: &[Tensor], weights: &[&Tensor]) -> Result<Vec<usize>> {
    if weights.len() < 2 || derivatives.len() != weights.len() {
        candle_core::bail!(
            "{NAME}: needs two or more layers, each with its derivatives ({} weights, {} derivatives)",
            weights.len(),
            derivatives.len()
        );
    }
    let mut widths = vec![weights[0].dim(1)?];
    for (w, d) in weights.iter().zip(derivatives) {
        let (out, input) = w.dims2()?;
        if input != widths[widths.len() - 1] || d.dim(1)? != out {
            candle_core::bail!(
                "{NAME}: layer shapes {:?} and {:?} do not chain",
                w.dims(),
                d.dims()
            );
        }
        widths.push(out);
    }
    Ok(widths)
}

/// The same with candle's ops: the rows `D_L W_L ⋯ D_2 W_2` multiplied from the code side, then
/// `Σ_c p_bc G p_bcᵀ` with `G = W_1 W_1ᵀ`. The reference the op is tested against.
pub(crate) fn deep_penalty_reference(
    derivatives: &[Tensor],
    weights: &[&Tensor],
) -> Result<Tensor> {
    widths(derivatives, weights)?;
    let last = weights.len() - 1;
    let (b, c) = derivatives[last].dims2()?;
    let mut rows = derivatives[last]
        .unsqueeze(2)?
        .broadcast_mul(&weights[last].unsqueeze(0)?)?;
    for l in (1..last).rev() {
        let width = rows.dim(2)?;
        rows = rows
            .broadcast_mul(&derivatives[l].unsqueeze(1)?)?
            .reshape((b * c, width))?
            .matmul(weights[l])?
            .reshape((b, c, weights[l].dim(1)?))?;
    }
    let h = rows.dim(2)?;
    let g = weights[0].matmul(&weights[0].t()?)?;
    let p = rows.broadcast_mul(&derivatives[0].unsqueeze(1)?)?;
    let pg = p.reshape((b * c, h))?.matmul(&g)?.reshape((b, c, h))?;
    (pg * p)?.sum((1, 2))
}

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor, Var};

    type Penalty = fn(&[Tensor], &[&Tensor]) -> candle_core::Result<Tensor>;

    /// The value and the gradients of `Σ_b u_b r_b` (random `u`) with respect to every operand.
    fn value_and_gradients(f: Penalty, d: &[Var], w: &[Var], u: &Tensor) -> Vec<Vec<f64>> {
        let ds: Vec<Tensor> = d.iter().map(|v| v.as_tensor().clone()).collect();
        let ws: Vec<&Tensor> = w.iter().map(|v| v.as_tensor()).collect();
        let r = f(&ds, &ws).unwrap();
        let grads = (&r * u).unwrap().sum_all().unwrap().backward().unwrap();
        let flat = |t: &Tensor| -> Vec<f64> {
            t.to_dtype(DType::F64)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap()
        };
        let mut out = vec![flat(&r)];
        for v in d.iter().chain(w) {
            out.push(flat(grads.get(v).unwrap()));
        }
        out
    }

    /// Against candle's ops: two, three and four layers at odd widths (one on either side of the
    /// symmetric product's 128-column blocks), the code narrower or wider than the layer before,
    /// on 1, 2 and 3 threads; f64 and f32.
    #[test]
    fn value_and_gradients_match_candle() {
        let nets: [&[usize]; 4] = [&[11, 7, 3], &[50, 130, 33, 5], &[9, 8, 7, 6, 4], &[3, 1, 1]];
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                for dtype in [DType::F32, DType::F64] {
                    for (i, widths) in nets.iter().enumerate() {
                        let batch = 2 + i;
                        let rand = |shape: &[usize]| {
                            let t = Tensor::randn(0f32, 1f32, shape, &Device::Cpu).unwrap();
                            Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap()
                        };
                        let w: Vec<Var> = widths.windows(2).map(|p| rand(&[p[1], p[0]])).collect();
                        let d: Vec<Var> = widths[1..].iter().map(|&h| rand(&[batch, h])).collect();
                        let u = rand(&[batch]);
                        let run = |f: Penalty| value_and_gradients(f, &d, &w, u.as_tensor());
                        let (fast, reference) =
                            (run(super::deep_penalty), run(super::deep_penalty_reference));
                        let tol = if dtype == DType::F64 { 1e-10 } else { 2e-4 };
                        for (k, (a, e)) in fast.iter().zip(&reference).enumerate() {
                            let scale = e.iter().fold(0f64, |s, v| s.max(v.abs())).max(1e-30);
                            let err = a.iter().zip(e).fold(0f64, |s, (a, e)| s.max((a - e).abs()));
                            assert!(
                                err / scale < tol,
                                "{dtype:?} {widths:?} on {threads} threads: output {k} \
                                 (0 value, then ∂d_l, then ∂W_l) rel err {:e}",
                                err / scale
                            );
                        }
                    }
                }
            });
        }
    }
}
