//! The leading right singular subspace of the encoder's Jacobian at many points at once: the
//! tangents of the Manifold Tangent Classifier (Rifai et al., NIPS 2011), the input directions the
//! code is most sensitive to.
//!
//! Block subspace iteration on `JᵀJ`, with `J v` and `Jᵀ u` propagated through the layers (no
//! Jacobian is formed): each iteration is two products of the whole batch's tangents with each
//! weight matrix, so thousands of points cost a few large matrix products.
use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{CaeError, ContractiveAutoencoder, Result};

impl ContractiveAutoencoder {
    /// `Jᵀ u` for code-space vectors `u: [P, B, code]` → `[P, B, input]`, exact. MLP encoders only.
    pub fn vjp(&self, x: &Tensor, u: &Tensor) -> Result<Tensor> {
        let mlp = self.mlp_network().ok_or_else(mlp_only)?;
        Ok(mlp.vjp(&mlp.encode_trace(x)?, u)?)
    }

    /// An orthonormal basis of the span of the `k` leading right singular vectors of `J(x)` at
    /// each row of `x`, `[k, B, input]` (tangent `i` of sample `b` is `[i, b, :]`), ordered by
    /// `‖J v‖`, largest first. `iterations` steps of subspace iteration from a start drawn with
    /// `seed`; the error in the subspace shrinks like `(σ_{k+1}/σ_k)^(2·iterations)`. Where `J`
    /// has rank below `k` the extra vectors are zero. MLP encoders only.
    pub fn tangent_basis(
        &self,
        x: &Tensor,
        k: usize,
        iterations: usize,
        seed: u64,
    ) -> Result<Tensor> {
        let mlp = self.mlp_network().ok_or_else(mlp_only)?;
        let (batch, input) = x.dims2()?;
        if k == 0 || k > input {
            return Err(CaeError::InvalidConfig(format!(
                "the number of tangents must be between 1 and the input size {input}, got {k}"
            )));
        }
        let trace = mlp.encode_trace(&x.detach())?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let start: Vec<f64> = (0..k * batch * input)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let mut basis = orthonormalise(start, k, batch, input);
        let to_tensor = |v: &[f64]| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, (k, batch, input), &Device::Cpu)?
                .to_dtype(x.dtype())?
                .to_device(x.device())?)
        };
        for _ in 0..iterations {
            let v = to_tensor(&basis)?;
            let next = mlp.vjp(&trace, &mlp.jvp(&trace, &v)?)?;
            basis = orthonormalise(host(&next)?, k, batch, input);
        }
        // Order each sample's vectors by ‖J v‖ (descending).
        let v = to_tensor(&basis)?;
        let gains = host(&mlp.jvp(&trace, &v)?.sqr()?.sum(2)?)?; // [k, B]
        let mut ordered = vec![0.0; basis.len()];
        for b in 0..batch {
            let mut order: Vec<usize> = (0..k).collect();
            order.sort_by(|&i, &j| gains[j * batch + b].total_cmp(&gains[i * batch + b]));
            for (to, &from) in order.iter().enumerate() {
                let (dst, src) = ((to * batch + b) * input, (from * batch + b) * input);
                ordered[dst..dst + input].copy_from_slice(&basis[src..src + input]);
            }
        }
        to_tensor(&ordered)
    }
}

fn mlp_only() -> CaeError {
    CaeError::InvalidConfig("Jacobian products Jᵀu are implemented for MLP encoders only".into())
}

fn host(t: &Tensor) -> Result<Vec<f64>> {
    Ok(t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()?)
}

/// Modified Gram–Schmidt of each sample's `k` vectors (layout `[k, B, input]`), in `f64`. A vector
/// that is (numerically) in the span of the ones before it becomes zero.
fn orthonormalise(mut v: Vec<f64>, k: usize, batch: usize, input: usize) -> Vec<f64> {
    let at = |i: usize, b: usize| (i * batch + b) * input;
    for b in 0..batch {
        let scale = (0..k)
            .map(|i| norm(&v[at(i, b)..at(i, b) + input]))
            .fold(0.0, f64::max);
        for i in 0..k {
            for j in 0..i {
                let (head, tail) = v.split_at_mut(at(i, b));
                let prev = &head[at(j, b)..at(j, b) + input];
                let cur = &mut tail[..input];
                let dot: f64 = prev.iter().zip(cur.iter()).map(|(p, c)| p * c).sum();
                cur.iter_mut().zip(prev).for_each(|(c, p)| *c -= dot * p);
            }
            let cur = &mut v[at(i, b)..at(i, b) + input];
            let n = norm(cur);
            let keep = n > 1e-10 * scale.max(f64::MIN_POSITIVE);
            cur.iter_mut()
                .for_each(|c| *c = if keep { *c / n } else { 0.0 });
        }
    }
    v
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}
