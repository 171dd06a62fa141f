//! The leading tangents of the encoder at one input: the right singular vectors of `J(x)` with the
//! largest singular values, the input directions along which the code changes fastest.
use cae_core::ContractiveAutoencoder;
use candle_core::Tensor;
use nalgebra::{DMatrix, SymmetricEigen};

use super::{invalid, to_f64_vec};
use crate::TrainError;

/// Eigen-decomposition of the symmetric `n × n` matrix `m` (row-major), eigenpairs sorted by
/// eigenvalue, largest first; eigenvectors are the columns of the returned matrix, in that order.
fn sorted_symmetric_eigen(m: Vec<f64>, n: usize) -> (Vec<f64>, DMatrix<f64>) {
    let eig = SymmetricEigen::new(DMatrix::from_row_slice(n, n, &m));
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| eig.eigenvalues[b].total_cmp(&eig.eigenvalues[a]));
    let values = order.iter().map(|&i| eig.eigenvalues[i]).collect();
    let vectors = DMatrix::from_fn(n, n, |r, c| eig.eigenvectors[(r, order[c])]);
    (values, vectors)
}

/// The top-`k` right singular vectors of `J(x)` for one input `x` (`[input]` or `[1, input]`): the
/// input directions along which the code changes fastest, each of length `input`, unit norm,
/// ordered by singular value. Directions with a zero singular value are left out, so fewer than `k`
/// may come back. Each vector's sign is chosen so that its largest-magnitude entry is positive.
pub fn leading_tangents(
    model: &ContractiveAutoencoder,
    x_single: &Tensor,
    k: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let x = match x_single.rank() {
        1 => x_single.unsqueeze(0)?,
        2 if x_single.dim(0)? == 1 => x_single.clone(),
        _ => {
            return Err(invalid(format!(
                "leading_tangents takes one input, got shape {:?}",
                x_single.shape()
            )))
        }
    };
    let jac = model.jacobian(&x)?;
    let (_, c, d) = jac.dims3()?;
    let j = DMatrix::from_row_slice(c, d, &to_f64_vec(&jac)?);
    let mut tangents = Vec::new();
    if d <= c {
        // Eigenvectors of JᵀJ are the right singular vectors.
        let gram = j.transpose() * &j;
        let (values, vectors) = sorted_symmetric_eigen(gram.transpose().as_slice().to_vec(), d);
        let tol = values.first().copied().unwrap_or(0.0).max(0.0) * 1e-12;
        for (i, &e) in values.iter().enumerate().take(k) {
            if e <= tol || e <= 0.0 {
                break;
            }
            tangents.push(vectors.column(i).iter().copied().collect::<Vec<f64>>());
        }
    } else {
        // Eigenvectors u of JJᵀ are the left singular vectors; v = Jᵀu / σ.
        let gram = &j * j.transpose();
        let (values, vectors) = sorted_symmetric_eigen(gram.transpose().as_slice().to_vec(), c);
        let tol = values.first().copied().unwrap_or(0.0).max(0.0) * 1e-12;
        for (i, &e) in values.iter().enumerate().take(k) {
            if e <= tol || e <= 0.0 {
                break;
            }
            let v = j.transpose() * vectors.column(i) / e.sqrt();
            tangents.push(v.iter().copied().collect());
        }
    }
    Ok(tangents
        .into_iter()
        .map(|mut v| {
            let norm = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            let peak = v
                .iter()
                .copied()
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .unwrap_or(0.0);
            let scale = if peak < 0.0 { -1.0 } else { 1.0 } / norm.max(1e-300);
            v.iter_mut().for_each(|a| *a *= scale);
            v.into_iter().map(|a| a as f32).collect()
        })
        .collect())
}
