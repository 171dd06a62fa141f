//! How much the encoder contracts: the finite-difference ratio `‖f(x) − f(x + r·u)‖ / ‖r·u‖`
//! for random unit directions `u`, against the radius `r` (a directional-derivative estimate as
//! `r → 0`, the contraction of a neighbourhood of size `r` beyond).
use cae_core::ContractiveAutoencoder;
use candle_core::Tensor;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{invalid, to_f64_vec};
use crate::TrainError;

/// `n` directions drawn uniformly on the unit sphere of `R^dim` (normalised standard Gaussians),
/// row-major `[n, dim]`.
pub fn random_unit_directions(rng: &mut ChaCha8Rng, n: usize, dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * dim);
    let mut row = vec![0f64; dim];
    for _ in 0..n {
        loop {
            for v in row.iter_mut() {
                *v = standard_normal(rng);
            }
            let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
            if norm > 1e-12 {
                out.extend(row.iter().map(|v| (v / norm) as f32));
                break;
            }
        }
    }
    out
}

/// Box–Muller; one normal per call is plenty here.
fn standard_normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Per row of `x` (`[N, input]`), `‖f(x) − f(x')‖ / ‖x − x'‖` with `x' = x + radius·u` and `f` the
/// encoder; `u` (`[N, input]`) holds the directions, normally unit vectors.
///
/// The denominator is the perturbation actually applied (`x' − x` in the model's dtype), not
/// `radius`, so that rounding of `x'` does not bias small radii. Even so, below `radius ≈ 1e-3`
/// an `f32` model's ratios are dominated by rounding of the codes.
pub fn contraction_ratios(
    model: &ContractiveAutoencoder,
    x: &Tensor,
    u: &Tensor,
    radius: f64,
) -> Result<Vec<f64>, TrainError> {
    let x_pert = (x + (u * radius)?)?;
    let dx = (&x_pert - x)?.sqr()?.sum(1)?.sqrt()?;
    let dy = (model.encode(&x_pert)? - model.encode(x)?)?
        .sqr()?
        .sum(1)?
        .sqrt()?;
    let dx = to_f64_vec(&dx)?;
    let dy = to_f64_vec(&dy)?;
    Ok(dy.iter().zip(&dx).map(|(a, b)| a / b).collect())
}

/// The contraction curve: for each radius `r`, the mean over the rows of `x` and
/// `samples_per_point` random directions `u` per row of `‖f(x) − f(x + r·u)‖ / ‖r·u‖`, where `f`
/// is the encoder and `u` is uniform on the unit sphere of the input space (from a ChaCha8 generator
/// seeded with `seed`). Returns `(radius, mean ratio)` pairs in the order of `radii`.
///
/// `x + r·u` is *not* clipped to the pixel range [0, 1]: clipping would change the direction and
/// length of the perturbation (on MNIST most pixels sit at 0 or 1, so a clipped `u` loses about
/// half its components), which would make the ratio no longer a directional derivative estimate
/// and make radii incomparable. The encoder is defined on all of `R^input`.
///
/// For a linear encoder `W` the ratio is `‖W u‖`, between `W`'s smallest and largest singular
/// values; as `r → 0` it tends to `‖J(x) u‖`.
pub fn contraction_curve(
    model: &ContractiveAutoencoder,
    x: &Tensor,
    radii: &[f64],
    samples_per_point: usize,
    seed: u64,
) -> Result<Vec<(f64, f64)>, TrainError> {
    if samples_per_point == 0 {
        return Err(invalid("the contraction curve needs samples_per_point ≥ 1"));
    }
    if let Some(r) = radii.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        return Err(invalid(format!(
            "contraction radius {r} must be positive and finite"
        )));
    }
    let (n, dim) = x.dims2()?;
    if n == 0 {
        return Err(invalid("the contraction curve needs at least one point"));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut curve = Vec::with_capacity(radii.len());
    for &r in radii {
        let mut sum = 0.0;
        for _ in 0..samples_per_point {
            let u = random_unit_directions(&mut rng, n, dim);
            let u = Tensor::from_vec(u, (n, dim), x.device())?.to_dtype(x.dtype())?;
            sum += contraction_ratios(model, x, &u, r)?.iter().sum::<f64>();
        }
        curve.push((r, sum / (n * samples_per_point) as f64));
    }
    Ok(curve)
}
