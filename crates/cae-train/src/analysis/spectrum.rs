//! The spectrum of the encoder Jacobian: the singular values of `J(x)` at each point (in f64),
//! averaged rank by rank over points, and how steep it is, as numbers: the signature of a CAE
//! (Rifai et al. 2011) is a few large singular values and a sharp drop — a low-dimensional tangent
//! space.
//!
//! - `σ_k / σ_1` at k = 5, 10, 20, on the spectrum averaged over points (the i-th value is the mean
//!   of every point's i-th largest singular value, as in the report's `spectrum`);
//! - the **effective rank** (Roy & Vetterli 2007): `exp(H(p))` with `p_i = σ_i / Σ_j σ_j` and `H`
//!   the Shannon entropy, computed on each point's whole spectrum and averaged over points. It is
//!   `r` for `r` equal singular values and zeros, and shrinks as the spectrum steepens.
use cae_core::ContractiveAutoencoder;
use candle_core::{DType, Tensor};
use nalgebra::DMatrix;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{invalid, to_f64_vec};
use crate::TrainError;

/// The ranks `k` of the reported `σ_k / σ_1`.
pub const SIGNATURE_RANKS: [usize; 3] = [5, 10, 20];
/// Points per call of `model.jacobian` (a `[B, code, input]` tensor each).
const CHUNK: usize = 16;

/// The steepness of the Jacobian's spectrum, see the module docs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpectrumSignature {
    /// `(k, σ̄_k / σ̄_1)` for each `k` of [`SIGNATURE_RANKS`] within the spectrum's length.
    pub ratios: Vec<(usize, f64)>,
    /// Mean over points of `exp(entropy of σ / Σσ)`.
    pub effective_rank: f64,
}

/// Every singular value of `J(x)` at each row of `x`, descending, one vector per row.
pub fn point_spectra(
    model: &ContractiveAutoencoder,
    x: &Tensor,
) -> Result<Vec<Vec<f64>>, TrainError> {
    let (n, _) = x.dims2()?;
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(CHUNK) {
        let len = CHUNK.min(n - start);
        out.extend(jacobian_singular_values(
            &model.jacobian(&x.narrow(0, start, len)?)?,
        )?);
    }
    Ok(out)
}

/// Singular values of each `J` in `jac` (`[B, code, input]`), descending: the square roots of the
/// eigenvalues of `J Jᵀ` or `Jᵀ J`, whichever is smaller, computed in `f64`.
pub fn jacobian_singular_values(jac: &Tensor) -> Result<Vec<Vec<f64>>, TrainError> {
    let (b, c, d) = jac.dims3()?;
    let j = jac.to_dtype(DType::F64)?;
    let gram = if c <= d {
        j.matmul(&j.transpose(1, 2)?)?
    } else {
        j.transpose(1, 2)?.matmul(&j)?
    };
    let m = c.min(d);
    let values = to_f64_vec(&gram)?;
    // Eigenvalues only (no eigenvectors): several times faster for a 784 × 784 Gram matrix.
    Ok((0..b)
        .into_par_iter()
        .map(|i| {
            let gram = DMatrix::from_row_slice(m, m, &values[i * m * m..(i + 1) * m * m]);
            let mut sv: Vec<f64> = gram
                .symmetric_eigenvalues()
                .iter()
                .map(|e| e.max(0.0).sqrt())
                .collect();
            sv.sort_by(|a, b| b.total_cmp(a));
            sv
        })
        .collect())
}

/// The singular values of the encoder Jacobian `J(x)` at each row of `x`, sorted descending,
/// averaged over the rows (the i-th value is the mean of every point's i-th largest), first `k`
/// (fewer when `min(code, input) < k`).
pub fn singular_value_spectrum(
    model: &ContractiveAutoencoder,
    x: &Tensor,
    k: usize,
) -> Result<Vec<f64>, TrainError> {
    let (n, _) = x.dims2()?;
    if n == 0 || k == 0 {
        return Err(invalid("the spectrum needs at least one point and k ≥ 1"));
    }
    Ok(mean_spectrum(&point_spectra(model, x)?, k))
}

/// The first `k` values of the points' spectra averaged rank by rank.
pub fn mean_spectrum(spectra: &[Vec<f64>], k: usize) -> Vec<f64> {
    let len = spectra.iter().map(Vec::len).min().unwrap_or(0).min(k);
    (0..len)
        .map(|i| spectra.iter().map(|s| s[i]).sum::<f64>() / spectra.len() as f64)
        .collect()
}

/// `exp(−Σ p_i ln p_i)` with `p = σ / Σσ`; 0 for an all-zero spectrum.
pub fn effective_rank(singular_values: &[f64]) -> f64 {
    let total: f64 = singular_values.iter().sum();
    if total <= 0.0 {
        return 0.0;
    }
    let entropy: f64 = singular_values
        .iter()
        .map(|s| s / total)
        .filter(|p| *p > 0.0)
        .map(|p| -p * p.ln())
        .sum();
    entropy.exp()
}

impl SpectrumSignature {
    /// The signature of the points' spectra (each descending).
    pub fn of(spectra: &[Vec<f64>]) -> Self {
        let mean = mean_spectrum(spectra, usize::MAX);
        let ratios = SIGNATURE_RANKS
            .iter()
            .filter(|&&k| k <= mean.len() && mean[0] > 0.0)
            .map(|&k| (k, mean[k - 1] / mean[0]))
            .collect();
        let effective_rank = if spectra.is_empty() {
            f64::NAN
        } else {
            spectra.iter().map(|s| effective_rank(s)).sum::<f64>() / spectra.len() as f64
        };
        Self {
            ratios,
            effective_rank,
        }
    }
}
