//! The fused training step of a one-layer CAE: loss, exact penalty and every parameter gradient
//! in one pass, with hand-derived backward formulas, over arrays kept from one step to the next.
use rayon::prelude::*;

use super::{activation3, matmul, matmul_untimed, EncoderWeights, Mat, OneLayer};
use crate::product_timing;
use crate::simd::multiversioned;
use crate::sparse::{self, Csr, Panels};
use crate::{fastmath, Activation};

/// Loss values and gradients of one step.
pub(crate) struct FusedStep {
    pub bce: f64,
    pub sq_norm_mean: f64,
    pub grad_w: Vec<f32>,
    pub grad_b: Vec<f32>,
    pub grad_v: Option<Vec<f32>>,
    pub grad_c: Vec<f32>,
}

/// Rows per parallel block: one block per thread, so per-block column accumulators stay few.
fn block_rows(rows: usize) -> usize {
    rows.div_ceil(rayon::current_num_threads().max(1)).max(1)
}

fn add_into(mut a: Vec<f32>, b: Vec<f32>) -> Vec<f32> {
    add_assign(&mut a, &b);
    a
}

multiversioned! {
    /// `a += b`.
    fn add_assign(a: &mut [f32], b: &[f32]) {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
    }
}

multiversioned! {
    /// The reconstruction part of one row: `dz ← (σ(z + c) − x) · scale` in place of `z`, added
    /// into `grad_c`; returns the row's summed binary cross-entropy on the logits `z + c`,
    /// accumulated in f64.
    fn bce_row(
        z_row: &mut [f32],
        x_row: &[f32],
        c: &[f32],
        loss: &mut [f32],
        grad_c: &mut [f32],
        scale: f32,
    ) -> f64 {
        for i in 0..z_row.len() {
            let zi = z_row[i] + c[i];
            let xi = x_row[i];
            // One exp serves both the loss and σ(z).
            let e = fastmath::exp(-zi.abs());
            let inv = 1.0 / (1.0 + e);
            let sig = if zi >= 0.0 { inv } else { e * inv };
            loss[i] = zi.max(0.0) - zi * xi + fastmath::ln_1p_unit(e);
            let dz = (sig - xi) * scale;
            z_row[i] = dz;
            grad_c[i] += dz;
        }
        fastmath::sum_f64(loss)
    }
}

/// `g''(a)` from `g(a)` and `g'(a)`: for every supported activation it is a function of the two,
/// so the step keeps two arrays per hidden unit instead of three.
#[inline(always)]
fn second_derivative(act: Activation, g: f32, d1: f32) -> f32 {
    match act {
        Activation::Sigmoid => d1 * (1.0 - 2.0 * g),
        Activation::Tanh => -2.0 * g * d1,
        Activation::Softplus => d1 * (1.0 - d1),
        Activation::Relu | Activation::Identity => 0.0,
    }
}

multiversioned! {
    /// `h ← g(h + b)`, `g' ← g'(h + b)` and `r += g'²` over one row; returns `Σ_j g'² s_j`, the
    /// sample's squared Jacobian norm.
    fn activate_row(
        act: Activation,
        h_row: &mut [f32],
        gp_row: &mut [f32],
        r: &mut [f32],
        bias: &[f32],
        s: &[f32],
    ) -> f32 {
        match act {
            Activation::Sigmoid => {
                activate_row_with(h_row, gp_row, r, bias, fastmath::sigmoid_and_derivative)
            }
            act => activate_row_with(h_row, gp_row, r, bias, |a| {
                let (g, d1, _) = activation3(act, a);
                (g, d1)
            }),
        }
        fastmath::sq_dot(gp_row, s)
    }
}

/// [`activate_row`] for one activation `f(a) = (g(a), g'(a))`; generic, so that each
/// activation's loop is compiled (and vectorised) on its own.
#[inline(always)]
fn activate_row_with(
    h_row: &mut [f32],
    gp_row: &mut [f32],
    r: &mut [f32],
    bias: &[f32],
    f: impl Fn(f32) -> (f32, f32),
) {
    for j in 0..h_row.len() {
        let (g, d1) = f(h_row[j] + bias[j]);
        h_row[j] = g;
        gp_row[j] = d1;
        r[j] += d1 * d1;
    }
}

multiversioned! {
    /// `da ← dh ⊙ g' + pen_scale · g' g'' s` in place over one row, adding `da` into `grad_b`.
    fn backprop_row(
        act: Activation,
        row: &mut [f32],
        gp_row: &[f32],
        h_row: &[f32],
        s: &[f32],
        grad_b: &mut [f32],
        pen_scale: f32,
    ) {
        match act {
            Activation::Sigmoid => {
                backprop_row_with(row, gp_row, h_row, s, grad_b, pen_scale, |g, d1| {
                    d1 * (1.0 - 2.0 * g)
                })
            }
            act => backprop_row_with(row, gp_row, h_row, s, grad_b, pen_scale, |g, d1| {
                second_derivative(act, g, d1)
            }),
        }
    }
}

/// [`backprop_row`] for one activation's `g''(g, g')`.
#[inline(always)]
fn backprop_row_with(
    row: &mut [f32],
    gp_row: &[f32],
    h_row: &[f32],
    s: &[f32],
    grad_b: &mut [f32],
    pen_scale: f32,
    second: impl Fn(f32, f32) -> f32,
) {
    for j in 0..row.len() {
        let d1 = gp_row[j];
        let da = row[j] * d1 + pen_scale * d1 * second(h_row[j], d1) * s[j];
        row[j] = da;
        grad_b[j] += da;
    }
}

/// The arrays of a training step that it writes in full before reading them, kept from one step
/// to the next so that a step neither allocates nor zeroes them again (14.8 MB for 784-1000-784
/// on 600 images).
#[derive(Default)]
pub(crate) struct StepBuffers {
    /// The code, `[B, H]`.
    h: Vec<f32>,
    /// `g'(a)`, `[B, H]`.
    gp: Vec<f32>,
    /// The decoder's logits, then their gradient, `[B, D]`.
    z: Vec<f32>,
    /// The code's gradient, then the pre-activations', `[B, H]`.
    dh: Vec<f32>,
    /// The panels of `Wᵀ` for the sparse encoder product.
    encoder_panels: Vec<f32>,
    /// The panels of the pre-activations' gradient for the sparse weight gradient.
    delta_panels: Vec<f32>,
}

impl std::fmt::Debug for StepBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let floats: usize = [
            &self.h,
            &self.gp,
            &self.z,
            &self.dh,
            &self.encoder_panels,
            &self.delta_panels,
        ]
        .iter()
        .map(|v| v.capacity())
        .sum();
        write!(f, "StepBuffers({floats} floats)")
    }
}

/// `buffer` holding `len` values (stale ones: the caller overwrites them).
fn reused(buffer: &mut Vec<f32>, len: usize) -> &mut [f32] {
    buffer.resize(len, 0.0);
    &mut buffer[..len]
}

multiversioned! {
    /// `Σ_i w_i²` ([`fastmath::sq_sum`], compiled for the CPU it runs on).
    fn sq_sum(w: &[f32]) -> f32 {
        fastmath::sq_sum(w)
    }
}

/// One training step. Besides the five matrix products there are three element-wise passes, each
/// over blocks of rows in parallel and each also producing the column sums the gradients need.
/// Intermediate arrays live in `buffers`, reused across steps.
pub(crate) fn one_layer_step(
    p: &OneLayer,
    x: &[f32],
    batch: usize,
    lambda: f64,
    buffers: &mut StepBuffers,
) -> FusedStep {
    let h_dim = p.b.len();
    let d = p.c.len();
    let b = batch;
    let xm = Mat::new(x, b, d);
    let rows = block_rows(b);
    let threads = rayon::current_num_threads();
    let StepBuffers {
        h,
        gp,
        z,
        dh,
        encoder_panels,
        delta_panels,
    } = buffers;

    // s_j = Σ_i W_ji²
    let s: Vec<f32> = p.w.par_chunks(d).map(sq_sum).collect();

    // Encoder: a = x Wᵀ + b, then h = g(a) in place and g'(a); per sample the penalty
    // q = Σ_j g'² s_j, and r_j = Σ_samples g'² for the penalty's weight gradient.
    let x_sparse = product_timing::timed(|| Csr::from_dense_if_sparse(x, b, d));
    let h = reused(h, b * h_dim);
    let encoder = EncoderWeights::reusing(p.w, h_dim, std::mem::take(encoder_panels));
    encoder.product(h, x, x_sparse.as_ref(), threads);
    *encoder_panels = encoder.into_buffer();
    let gp = reused(gp, b * h_dim);
    let (q_sum, r) = h
        .par_chunks_mut(rows * h_dim)
        .zip(gp.par_chunks_mut(rows * h_dim))
        .map(|(h_block, gp_block)| {
            let mut r = vec![0f32; h_dim];
            let mut q_sum = 0f64;
            for (h_row, gp_row) in h_block
                .chunks_exact_mut(h_dim)
                .zip(gp_block.chunks_exact_mut(h_dim))
            {
                let q = activate_row(p.activation, h_row, gp_row, &mut r, p.b, &s);
                q_sum += q as f64;
            }
            (q_sum, r)
        })
        .reduce(
            || (0.0, vec![0f32; h_dim]),
            |(qa, ra), (qb, rb)| (qa + qb, add_into(ra, rb)),
        );
    let sq_norm_mean = q_sum / b as f64;
    let (h, gp) = (&*h, &*gp);

    // Decoder: z = h Vᵀ + c (tied: h W + c).
    let hm = Mat::new(h, b, h_dim);
    let z = reused(z, b * d);
    matmul(z, hm, p.decoder_matrix(), false);

    // BCE on logits, dz = (σ(z) − x) / (B·D) in place of z, and its column sums (grad of c).
    let scale = 1.0 / (b * d) as f32;
    let (bce_sum, grad_c) = z
        .par_chunks_mut(rows * d)
        .zip(x.par_chunks(rows * d))
        .map(|(z_block, x_block)| {
            let mut grad_c = vec![0f32; d];
            let mut loss = vec![0f32; d];
            let mut sum = 0f64;
            for (z_row, x_row) in z_block.chunks_exact_mut(d).zip(x_block.chunks_exact(d)) {
                sum += bce_row(z_row, x_row, p.c, &mut loss, &mut grad_c, scale);
            }
            (sum, grad_c)
        })
        .reduce(
            || (0.0, vec![0f32; d]),
            |(sa, ca), (sb, cb)| (sa + sb, add_into(ca, cb)),
        );
    let dz = &*z;

    // Decoder gradients: dV = dzᵀ h and dh = dz V (tied: dz W). Untied, the two products read
    // only what neither writes, so each runs on its own threads: 9.1-10.1 ms for the pair on two
    // threads against 9.8-10.4 ms one after the other, each spread over both (784-1000-784, 600
    // images, best of 20, three rounds).
    let dzm = Mat::new(dz, b, d);
    let dh = reused(dh, b * h_dim);
    let grad_v = match p.v {
        Some(_) => {
            let mut gv = vec![0f32; d * h_dim];
            let first = (threads / 2).max(1);
            let second = threads.saturating_sub(first).max(1);
            product_timing::timed(|| {
                rayon::join(
                    || matmul_untimed(&mut gv, dzm.t(), hm, false, first),
                    || matmul_untimed(dh, dzm, p.decoder_matrix().t(), false, second),
                )
            });
            Some(gv)
        }
        None => {
            matmul(dh, dzm, p.decoder_matrix().t(), false);
            None
        }
    };

    // da = dh ⊙ g' + (2λ/B) g' g'' s in place of dh, and its column sums (grad of b).
    let pen_scale = (2.0 * lambda / b as f64) as f32;
    let grad_b = dh
        .par_chunks_mut(rows * h_dim)
        .zip(gp.par_chunks(rows * h_dim).zip(h.par_chunks(rows * h_dim)))
        .map(|(da_block, (gp_block, h_block))| {
            let mut grad_b = vec![0f32; h_dim];
            for ((row, gp_row), h_row) in da_block
                .chunks_exact_mut(h_dim)
                .zip(gp_block.chunks_exact(h_dim))
                .zip(h_block.chunks_exact(h_dim))
            {
                backprop_row(p.activation, row, gp_row, h_row, &s, &mut grad_b, pen_scale);
            }
            grad_b
        })
        .reduce(|| vec![0f32; h_dim], add_into);
    let da = &*dh;

    // dW = (2λ/B) r_j W_j + daᵀ x  (+ hᵀ dz when tied).
    let mut grad_w = match p.v {
        Some(_) => penalty_weight_gradient(p.w, &r, pen_scale),
        None => {
            let mut grad_w = vec![0f32; h_dim * d];
            matmul(&mut grad_w, hm.t(), dzm, false);
            add_penalty_weight_gradient(&mut grad_w, p.w, &r, pen_scale);
            grad_w
        }
    };
    match &x_sparse {
        Some(csr) => {
            // daᵀ x = (xᵀ da)ᵀ, with xᵀ sparse, added straight into the weights' layout.
            product_timing::timed(|| {
                let da = Panels::from_row_major_in(std::mem::take(delta_panels), da, b, h_dim);
                sparse::add_sparse_times_dense_transposed(&mut grad_w, &csr.transpose(), &da);
                *delta_panels = da.into_buffer();
            });
        }
        None => matmul(&mut grad_w, Mat::new(da, b, h_dim).t(), xm, true),
    }

    FusedStep {
        bce: bce_sum / (b * d) as f64,
        sq_norm_mean,
        grad_w,
        grad_b,
        grad_v,
        grad_c,
    }
}

/// `(2λ/B) r_j W_j`, the penalty's part of the weight gradient, `[H, D]`, written once (no zeroed
/// array first).
fn penalty_weight_gradient(w: &[f32], r: &[f32], pen_scale: f32) -> Vec<f32> {
    let d = w.len() / r.len().max(1);
    let mut grad_w = Vec::with_capacity(w.len());
    grad_w.spare_capacity_mut()[..w.len()]
        .par_chunks_mut(d.max(1))
        .zip(w.par_chunks(d.max(1)))
        .zip(r)
        .for_each(|((g_row, w_row), &r_j)| {
            let k = pen_scale * r_j;
            for (g, &w) in g_row.iter_mut().zip(w_row) {
                g.write(k * w);
            }
        });
    // SAFETY: the loop above wrote each of the first `w.len()` elements (`r.len()` rows of `d`).
    unsafe { grad_w.set_len(w.len()) };
    grad_w
}

/// `grad_w[j, i] += pen_scale · r_j · W[j, i]`, the penalty's part of the weight gradient.
fn add_penalty_weight_gradient(grad_w: &mut [f32], w: &[f32], r: &[f32], pen_scale: f32) {
    let d = w.len() / r.len().max(1);
    grad_w
        .par_chunks_mut(d)
        .zip(w.par_chunks(d))
        .zip(r)
        .for_each(|((g_row, w_row), &r_j)| add_scaled(g_row, pen_scale * r_j, w_row));
}

multiversioned! {
    /// `a += k · b`.
    fn add_scaled(a: &mut [f32], k: f32, b: &[f32]) {
        a.iter_mut().zip(b).for_each(|(x, y)| *x += k * y);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fused::{one_layer_forward, ForwardOutput};
    use crate::simd::tests::portable_only;
    use rand::{Rng, SeedableRng};

    fn random(n: usize, scale: f32, rng: &mut impl Rng) -> Vec<f32> {
        (0..n).map(|_| rng.random_range(-scale..scale)).collect()
    }

    #[test]
    fn a_step_on_reused_buffers_equals_one_on_fresh_buffers() {
        // Buffers left by steps of other batch sizes, tied and untied, sparse and dense inputs:
        // every array the step reuses must be rewritten before it is read.
        let (h_dim, d) = (70, 45);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
        let (w, b) = (
            random(h_dim * d, 0.5, &mut rng),
            random(h_dim, 0.5, &mut rng),
        );
        let (v, c) = (random(d * h_dim, 0.5, &mut rng), random(d, 0.5, &mut rng));
        let mut buffers = StepBuffers::default();
        for (batch, density) in [(13, 1.0), (40, 0.1), (7, 0.1), (40, 1.0), (13, 0.1)] {
            let x: Vec<f32> = (0..batch * d)
                .map(|_| {
                    let v = rng.random_range(0.0..1.0f32);
                    if v < density {
                        v
                    } else {
                        0.0
                    }
                })
                .collect();
            for tied in [false, true] {
                let layer = OneLayer {
                    activation: Activation::Sigmoid,
                    w: &w,
                    b: &b,
                    v: (!tied).then_some(&v[..]),
                    c: &c,
                };
                let values = |step: FusedStep| {
                    let mut all = vec![step.bce as f32, step.sq_norm_mean as f32];
                    for part in [step.grad_w, step.grad_b, step.grad_c] {
                        all.extend(part);
                    }
                    all.extend(step.grad_v.unwrap_or_default());
                    all.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
                };
                let fresh = values(one_layer_step(
                    &layer,
                    &x,
                    batch,
                    0.1,
                    &mut StepBuffers::default(),
                ));
                let reused = values(one_layer_step(&layer, &x, batch, 0.1, &mut buffers));
                assert_eq!(
                    fresh, reused,
                    "batch {batch}, density {density}, tied {tied}"
                );
            }
        }
    }

    #[test]
    fn baseline_and_avx2_element_wise_passes_compute_the_same_bits() {
        let (batch, h_dim, d) = (13, 70, 45);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let (w, b) = (
            random(h_dim * d, 0.5, &mut rng),
            random(h_dim, 0.5, &mut rng),
        );
        let (v, c) = (random(d * h_dim, 0.5, &mut rng), random(d, 0.5, &mut rng));
        // Dense, so that the products are `gemm`'s in both runs: the sparse products' AVX2 kernel
        // fuses its multiply-adds (it is checked on its own in `sparse`).
        let x: Vec<f32> = (0..batch * d).map(|_| rng.random_range(0.0..1.0)).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for activation in [Activation::Sigmoid, Activation::Tanh, Activation::Softplus] {
            for tied in [false, true] {
                let layer = OneLayer {
                    activation,
                    w: &w,
                    b: &b,
                    v: (!tied).then_some(&v[..]),
                    c: &c,
                };
                let run = || {
                    let step = one_layer_step(&layer, &x, batch, 0.1, &mut StepBuffers::default());
                    let code = one_layer_forward(&layer, &x, batch, ForwardOutput::Code);
                    let out = one_layer_forward(&layer, &x, batch, ForwardOutput::Reconstruction);
                    let mut all = vec![step.bce as f32, step.sq_norm_mean as f32];
                    for part in [step.grad_w, step.grad_b, step.grad_c, code, out] {
                        all.extend(part);
                    }
                    all.extend(step.grad_v.unwrap_or_default());
                    bits(&all)
                };
                let (fast, portable) = (run(), portable_only(run));
                let first_difference = fast.iter().zip(&portable).position(|(a, b)| a != b);
                assert_eq!(
                    first_difference,
                    None,
                    "{activation:?}, tied {tied}: {} values",
                    fast.len()
                );
            }
        }
    }
}
