//! The metrics of `cae-cli eval`: how well a trained autoencoder reconstructs, how much its encoder
//! contracts, what its Jacobian looks like, and how useful its codes are as features.
//!
//! - **Reconstruction**: BCE per pixel over a whole set, overall and per class
//!   ([`reconstruction_by_class`]).
//! - **Contraction**: the mean `‖J(x)‖_F` ([`mean_jacobian_frobenius`]) and the finite-difference
//!   contraction ratio `‖f(x) − f(x + r·u)‖ / ‖r·u‖` against the radius `r` ([`contraction_curve`]).
//! - **Spectrum**: the singular values of `J(x)`, sorted and averaged over points
//!   ([`singular_value_spectrum`]); a CAE concentrates its sensitivity on a few directions.
//! - **Saturation**: the fraction of code units near 0 or 1 ([`saturation`]).
//! - **Features**: a multinomial logistic-regression probe on the codes or the raw pixels
//!   ([`linear_probe`], [`probe_codes`], [`probe_pixels`]).
//! - **Tangents**: the leading right singular vectors of `J(x)`, the input directions the code is
//!   most sensitive to ([`leading_tangents`], [`tangent_grid`]).
//!
//! [`analyse`] runs all of it into an [`EvalReport`]; [`render_table`] prints reports side by side,
//! and [`plot_contraction_curves`] / [`plot_spectra`] draw several models on one figure.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use cae_core::{Activation, Architecture, ContractiveAutoencoder};
use cae_data::Dataset;
use candle_core::{DType, Device, Tensor, D};
use image::{GrayImage, RgbImage};
use nalgebra::{DMatrix, SymmetricEigen};
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::figures::{self, FigureError, FONT_FAMILY};
use crate::spectrum::{mean_spectrum, point_spectra, SpectrumSignature, SIGNATURE_RANKS};
use crate::TrainError;

/// Samples per forward pass when a function walks a whole [`Dataset`].
pub const EVAL_BATCH: usize = 1000;
/// Points per call of `model.jacobian` in the spectrum (a `[B, code, input]` tensor each).
const JACOBIAN_CHUNK: usize = 16;
/// A code unit below this value counts as saturated low (see [`saturation`]).
pub const SATURATION_LOW: f64 = 0.05;
/// A code unit above this value counts as saturated high (see [`saturation`]).
pub const SATURATION_HIGH: f64 = 0.95;
/// Minibatch size of the linear probe's gradient descent.
pub const PROBE_BATCH: usize = 256;
/// Seed of the probe's minibatch order (the probe is deterministic).
const PROBE_SEED: u64 = 0x05EE_D0F9_B0BE;
/// Size of the contraction and spectrum plots in pixels.
pub const ANALYSIS_PLOT_SIZE: (u32, u32) = (900, 560);

fn invalid(message: impl Into<String>) -> TrainError {
    TrainError::InvalidConfig(message.into())
}

fn to_f64_vec(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}

// ---------------------------------------------------------------------------------------------
// Reconstruction
// ---------------------------------------------------------------------------------------------

/// Reconstruction BCE per pixel over a whole set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionReport {
    /// Mean BCE per pixel over every sample.
    pub overall_bce: f64,
    /// `(label, count, mean BCE per pixel of that class)`, by label, for every label present.
    /// `Σ count·bce / Σ count == overall_bce`.
    pub per_class: Vec<(u8, usize, f64)>,
}

/// BCE per pixel of the reconstruction of every image of `data` ([`ContractiveAutoencoder::sample_bce`],
/// the figure training reports as `test_bce`), in batches of [`EVAL_BATCH`], overall and per class.
pub fn reconstruction_by_class(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<ReconstructionReport, TrainError> {
    let n = data.len();
    let mut sums: BTreeMap<u8, (usize, f64)> = BTreeMap::new();
    let mut total = 0.0;
    for start in (0..n).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(n);
        let x = data.to_tensor(start..end, device)?;
        let bce = model.sample_bce(&x)?;
        for (&label, b) in data.labels()[start..end].iter().zip(bce) {
            let entry = sums.entry(label).or_insert((0, 0.0));
            entry.0 += 1;
            entry.1 += b;
            total += b;
        }
    }
    Ok(ReconstructionReport {
        overall_bce: if n == 0 { f64::NAN } else { total / n as f64 },
        per_class: sums
            .into_iter()
            .map(|(label, (count, sum))| (label, count, sum / count as f64))
            .collect(),
    })
}

// ---------------------------------------------------------------------------------------------
// Contraction
// ---------------------------------------------------------------------------------------------

/// Mean `‖J(x)‖_F` over all of `data` (the square roots of `model.jacobian_sq_norm(x)`, summed in f64,
/// so a Hutchinson model gives its estimate).
pub fn mean_jacobian_frobenius(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<f64, TrainError> {
    let n = data.len();
    let mut sum = 0.0;
    for start in (0..n).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(n);
        let x = data.to_tensor(start..end, device)?;
        let sq = cae_core::to_host_f64(&model.jacobian_sq_norm(&x)?)?;
        sum += sq.iter().map(|s| s.max(0.0).sqrt()).sum::<f64>();
    }
    Ok(if n == 0 { f64::NAN } else { sum / n as f64 })
}

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

// ---------------------------------------------------------------------------------------------
// Spectrum and tangents
// ---------------------------------------------------------------------------------------------

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
    let mut sums: Vec<f64> = Vec::new();
    for start in (0..n).step_by(JACOBIAN_CHUNK) {
        let len = JACOBIAN_CHUNK.min(n - start);
        let jac = model.jacobian(&x.narrow(0, start, len)?)?;
        for sv in jacobian_singular_values(&jac)? {
            if sums.is_empty() {
                sums = vec![0.0; sv.len().min(k)];
            }
            for (s, v) in sums.iter_mut().zip(sv) {
                *s += v;
            }
        }
    }
    Ok(sums.into_iter().map(|s| s / n as f64).collect())
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

/// Maps a tangent to [0, 1] for display: `0.5 + 0.5·v / max|v|`, so 0.5 (grey) is zero, white the
/// most positive entry, black its negation.
pub fn tangent_to_image(v: &[f32]) -> Vec<f32> {
    let peak = v.iter().fold(0f32, |m, a| m.max(a.abs()));
    let peak = if peak > 0.0 { peak } else { 1.0 };
    v.iter().map(|a| 0.5 + 0.5 * a / peak).collect()
}

/// A grid of tangents: figure row `r` shows `rows[r]` (e.g. one input's [`leading_tangents`]),
/// each rescaled by [`tangent_to_image`], as `width × height` images enlarged `scale` times.
///
/// # Panics
/// Like [`figures::image_grid`], if a tangent's length is not `width * height` or a size is zero.
pub fn tangent_grid(rows: &[Vec<Vec<f32>>], width: usize, height: usize, scale: u32) -> GrayImage {
    let flat: Vec<Vec<f32>> = rows
        .iter()
        .map(|row| row.iter().flat_map(|v| tangent_to_image(v)).collect())
        .collect();
    let refs: Vec<&[f32]> = flat.iter().map(Vec::as_slice).collect();
    figures::image_grid(&refs, width, height, scale)
}

/// [`tangent_grid`] written as a PNG to `path`.
pub fn save_tangent_grid(
    rows: &[Vec<Vec<f32>>],
    width: usize,
    height: usize,
    scale: u32,
    path: &Path,
) -> Result<(), FigureError> {
    figures::save_png(&tangent_grid(rows, width, height, scale), path)
}

// ---------------------------------------------------------------------------------------------
// Saturation
// ---------------------------------------------------------------------------------------------

/// Fraction of the entries of `codes` (any shape) below [`SATURATION_LOW`] or above
/// [`SATURATION_HIGH`]. Meaningful for codes in [0, 1] (sigmoid code units), where it measures how
/// many units sit on the flat ends of the sigmoid; for other activations the thresholds mean nothing.
pub fn saturation_of_codes(codes: &Tensor) -> Result<f64, TrainError> {
    let count = codes.elem_count();
    if count == 0 {
        return Ok(f64::NAN);
    }
    let c = codes.to_dtype(DType::F64)?;
    let low = c.lt(SATURATION_LOW)?.to_dtype(DType::F64)?;
    let high = c.gt(SATURATION_HIGH)?.to_dtype(DType::F64)?;
    Ok(to_f64_vec(&(low + high)?.sum_all()?)?[0] / count as f64)
}

/// [`saturation_of_codes`] over the codes of all of `data`: the fraction of (sample, unit) pairs
/// whose code is below 0.05 or above 0.95. About sigmoid-range codes; see [`codes_are_sigmoid`].
pub fn saturation(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<f64, TrainError> {
    let n = data.len();
    let mut saturated = 0.0;
    let mut total = 0usize;
    for start in (0..n).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(n);
        let codes = model.encode(&data.to_tensor(start..end, device)?)?;
        let count = codes.elem_count();
        saturated += saturation_of_codes(&codes)? * count as f64;
        total += count;
    }
    Ok(if total == 0 {
        f64::NAN
    } else {
        saturated / total as f64
    })
}

/// Whether the model's code units are sigmoids (codes in [0, 1]), the case [`saturation`] is for.
pub fn codes_are_sigmoid(model: &ContractiveAutoencoder) -> bool {
    let act = match &model.config().architecture {
        Architecture::Mlp(m) => m.code_activation,
        Architecture::Conv(c) => c.activation,
    };
    act == Activation::Sigmoid
}

// ---------------------------------------------------------------------------------------------
// Linear probe
// ---------------------------------------------------------------------------------------------

/// Accuracy of a linear classifier trained on some features.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    pub train_accuracy: f64,
    pub test_accuracy: f64,
}

/// The codes of all of `data`, `[len, code]`, on `device`, computed [`EVAL_BATCH`] at a time.
pub fn encode_dataset(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<Tensor, TrainError> {
    let n = data.len();
    let mut parts = Vec::new();
    for start in (0..n).step_by(EVAL_BATCH) {
        let end = (start + EVAL_BATCH).min(n);
        parts.push(model.encode(&data.to_tensor(start..end, device)?)?);
    }
    if parts.is_empty() {
        return Ok(Tensor::zeros((0, model.code_dim()), DType::F32, device)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

fn one_hot(labels: &[u8], classes: usize, device: &Device) -> Result<Tensor, TrainError> {
    let mut y = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        if l as usize >= classes {
            return Err(invalid(format!(
                "label {l} is not below classes = {classes}"
            )));
        }
        y[i * classes + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(y, (labels.len(), classes), device)?)
}

fn accuracy(x: &Tensor, w: &Tensor, b: &Tensor, labels: &[u8]) -> Result<f64, TrainError> {
    if labels.is_empty() {
        return Ok(f64::NAN);
    }
    let pred = x
        .matmul(w)?
        .broadcast_add(b)?
        .argmax(D::Minus1)?
        .to_vec1::<u32>()?;
    let hits = pred
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as u32)
        .count();
    Ok(hits as f64 / labels.len() as f64)
}

/// Trains a multinomial logistic regression (softmax over `classes`, weights and biases from zero)
/// on `train_codes` (`[N, F]`) by minibatch gradient descent ([`PROBE_BATCH`] per step, a fixed
/// shuffled order per epoch, so the result is deterministic) for `epochs` passes at rate `lr`, and
/// reports its accuracy on the training and the test set.
///
/// Features are standardised first with the training set's per-feature mean and standard
/// deviation (constant features are left centred), so one `lr` (≈ 0.1–1) suits codes and pixels.
pub fn linear_probe(
    train_codes: &Tensor,
    train_labels: &[u8],
    test_codes: &Tensor,
    test_labels: &[u8],
    classes: usize,
    epochs: usize,
    lr: f64,
) -> Result<ProbeReport, TrainError> {
    let (n, f) = train_codes.dims2()?;
    let (n_test, f_test) = test_codes.dims2()?;
    if n != train_labels.len() || n_test != test_labels.len() || f != f_test {
        return Err(invalid(format!(
            "probe inputs disagree: train [{n}, {f}] with {} labels, test [{n_test}, {f_test}] with {} labels",
            train_labels.len(),
            test_labels.len()
        )));
    }
    if n == 0 || classes < 2 {
        return Err(invalid(
            "the probe needs training samples and at least 2 classes",
        ));
    }
    let device = train_codes.device();
    let train = train_codes.to_dtype(DType::F32)?;
    let test = test_codes.to_dtype(DType::F32)?.to_device(device)?;
    let mean = train.mean_keepdim(0)?;
    let centred = train.broadcast_sub(&mean)?;
    // Constant features stay centred (divided by 1).
    let std: Vec<f32> = centred
        .sqr()?
        .mean(0)?
        .sqrt()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|s| if s > 1e-6 { s } else { 1.0 })
        .collect();
    let std = Tensor::from_vec(std, (1, f), device)?;
    let train = centred.broadcast_div(&std)?;
    let test = test.broadcast_sub(&mean)?.broadcast_div(&std)?;
    let y = one_hot(train_labels, classes, device)?;

    let mut w = Tensor::zeros((f, classes), DType::F32, device)?;
    let mut b = Tensor::zeros(classes, DType::F32, device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(PROBE_SEED);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for _ in 0..epochs {
        // Fisher–Yates with the probe's own generator.
        for i in (1..n).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(PROBE_BATCH) {
            let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
            let xb = train.index_select(&idx, 0)?;
            let yb = y.index_select(&idx, 0)?;
            let logits = xb.matmul(&w)?.broadcast_add(&b)?;
            let g = (candle_nn::ops::softmax_last_dim(&logits)? - yb)?;
            let scale = lr / chunk.len() as f64;
            w = (w - (xb.t()?.matmul(&g)? * scale)?)?;
            b = (b - (g.sum(0)? * scale)?)?;
        }
    }
    Ok(ProbeReport {
        train_accuracy: accuracy(&train, &w, &b, train_labels)?,
        test_accuracy: accuracy(&test, &w, &b, test_labels)?,
    })
}

fn probe_classes(train: &Dataset, test: &Dataset) -> usize {
    train.num_classes().max(test.num_classes()).max(2)
}

/// [`linear_probe`] on the model's codes of `train` and `test`.
pub fn probe_codes(
    model: &ContractiveAutoencoder,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f64,
    device: &Device,
) -> Result<ProbeReport, TrainError> {
    linear_probe(
        &encode_dataset(model, train, device)?,
        train.labels(),
        &encode_dataset(model, test, device)?,
        test.labels(),
        probe_classes(train, test),
        epochs,
        lr,
    )
}

/// [`linear_probe`] on the raw pixels of `train` and `test`, the baseline for [`probe_codes`].
pub fn probe_pixels(
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f64,
    device: &Device,
) -> Result<ProbeReport, TrainError> {
    linear_probe(
        &train.to_tensor(0..train.len(), device)?,
        train.labels(),
        &test.to_tensor(0..test.len(), device)?,
        test.labels(),
        probe_classes(train, test),
        epochs,
        lr,
    )
}

// ---------------------------------------------------------------------------------------------
// Everything together
// ---------------------------------------------------------------------------------------------

/// What [`analyse`] measures and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Test points (the first ones) for the contraction curve.
    pub contraction_points: usize,
    pub radii: Vec<f64>,
    pub samples_per_point: usize,
    /// Test points (the first ones) whose Jacobian spectra are averaged.
    pub spectrum_points: usize,
    /// Singular values kept.
    pub spectrum_k: usize,
    /// Linear-probe epochs; 0 skips the probe.
    pub probe_epochs: usize,
    pub probe_lr: f64,
    pub seed: u64,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            contraction_points: 500,
            radii: vec![0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0],
            samples_per_point: 4,
            spectrum_points: 50,
            spectrum_k: 50,
            probe_epochs: 10,
            probe_lr: 0.1,
            seed: 0,
        }
    }
}

/// Every metric of `cae-cli eval` for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalReport {
    /// Size of the evaluation (test) set.
    pub samples: usize,
    pub reconstruction: ReconstructionReport,
    /// Mean `‖J(x)‖_F` over the test set.
    pub mean_jacobian_frobenius: f64,
    /// `(radius, mean contraction ratio)`, see [`contraction_curve`].
    pub contraction: Vec<(f64, f64)>,
    /// Mean sorted singular values of `J(x)`, see [`singular_value_spectrum`].
    pub spectrum: Vec<f64>,
    /// How steep the spectrum is: `σ_k/σ_1` and the effective rank, on the same points.
    #[serde(default)]
    pub spectrum_signature: Option<SpectrumSignature>,
    /// Fraction of saturated code units; `None` unless the code units are sigmoids.
    pub saturation: Option<f64>,
    /// Linear probe on the codes; `None` when skipped (no training set or 0 epochs).
    pub probe: Option<ProbeReport>,
}

/// Runs every metric on `test` (and the probe, trained on `train` when given).
pub fn analyse(
    model: &ContractiveAutoencoder,
    train: Option<&Dataset>,
    test: &Dataset,
    opts: &EvalOptions,
    device: &Device,
) -> Result<EvalReport, TrainError> {
    let first = |n: usize| test.to_tensor(0..n.min(test.len()), device);
    let probe = match train {
        Some(train) if opts.probe_epochs > 0 => Some(probe_codes(
            model,
            train,
            test,
            opts.probe_epochs,
            opts.probe_lr,
            device,
        )?),
        _ => None,
    };
    let spectra = point_spectra(model, &first(opts.spectrum_points)?)?;
    if spectra.is_empty() || opts.spectrum_k == 0 {
        return Err(invalid("the spectrum needs at least one point and k ≥ 1"));
    }
    Ok(EvalReport {
        samples: test.len(),
        reconstruction: reconstruction_by_class(model, test, device)?,
        mean_jacobian_frobenius: mean_jacobian_frobenius(model, test, device)?,
        contraction: contraction_curve(
            model,
            &first(opts.contraction_points)?,
            &opts.radii,
            opts.samples_per_point,
            opts.seed,
        )?,
        spectrum: mean_spectrum(&spectra, opts.spectrum_k),
        spectrum_signature: Some(SpectrumSignature::of(&spectra)),
        saturation: if codes_are_sigmoid(model) {
            Some(saturation(model, test, device)?)
        } else {
            None
        },
        probe,
    })
}

/// Singular values shown in [`render_table`] (the report keeps all `k`).
const TABLE_SINGULAR_VALUES: usize = 10;

/// A plain-text table with one column per model and one row per metric.
pub fn render_table(reports: &[(&str, &EvalReport)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: String, f: &dyn Fn(&EvalReport) -> Option<String>| {
        let cells = reports
            .iter()
            .map(|(_, r)| f(r).unwrap_or_else(|| "-".into()))
            .collect();
        rows.push((name, cells));
    };
    row("test samples".into(), &|r| Some(r.samples.to_string()));
    row("BCE per pixel".into(), &|r| {
        Some(format!("{:.5}", r.reconstruction.overall_bce))
    });
    row("mean ‖J‖_F".into(), &|r| {
        Some(format!("{:.4}", r.mean_jacobian_frobenius))
    });
    row("saturated units".into(), &|r| {
        r.saturation.map(|s| format!("{:.2}%", 100.0 * s))
    });
    row("probe train acc".into(), &|r| {
        r.probe.map(|p| format!("{:.2}%", 100.0 * p.train_accuracy))
    });
    row("probe test acc".into(), &|r| {
        r.probe.map(|p| format!("{:.2}%", 100.0 * p.test_accuracy))
    });
    let mut radii: Vec<f64> = reports
        .iter()
        .flat_map(|(_, r)| r.contraction.iter().map(|p| p.0))
        .collect();
    radii.sort_by(f64::total_cmp);
    radii.dedup();
    for radius in radii {
        row(format!("contraction r={radius}"), &|r| {
            r.contraction
                .iter()
                .find(|p| p.0 == radius)
                .map(|p| format!("{:.4}", p.1))
        });
    }
    let k = reports
        .iter()
        .map(|(_, r)| r.spectrum.len())
        .max()
        .unwrap_or(0)
        .min(TABLE_SINGULAR_VALUES);
    for i in 0..k {
        row(format!("σ_{}", i + 1), &|r| {
            r.spectrum.get(i).map(|s| format!("{s:.4}"))
        });
    }
    for k in SIGNATURE_RANKS {
        row(format!("σ_{k}/σ_1"), &|r| {
            let signature = r.spectrum_signature.as_ref()?;
            let ratio = signature.ratios.iter().find(|(rank, _)| *rank == k)?;
            Some(format!("{:.4}", ratio.1))
        });
    }
    row("effective rank".into(), &|r| {
        r.spectrum_signature
            .as_ref()
            .map(|s| format!("{:.2}", s.effective_rank))
    });
    let mut labels: Vec<u8> = reports
        .iter()
        .flat_map(|(_, r)| r.reconstruction.per_class.iter().map(|c| c.0))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    for label in labels {
        row(format!("BCE class {label}"), &|r| {
            r.reconstruction
                .per_class
                .iter()
                .find(|c| c.0 == label)
                .map(|c| format!("{:.5} (n={})", c.2, c.1))
        });
    }

    let width = |s: &str| s.chars().count();
    let first = rows
        .iter()
        .map(|(n, _)| width(n))
        .chain([width("metric")])
        .max()
        .unwrap_or(0);
    let cols: Vec<usize> = reports
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            rows.iter()
                .map(|(_, c)| width(&c[i]))
                .chain([width(name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(width(s))));
    let mut out = String::new();
    let mut line = |first_cell: &str, cells: Vec<&str>| {
        let mut l = pad(first_cell, first);
        for (c, w) in cells.into_iter().zip(&cols) {
            l.push_str("  ");
            l.push_str(&" ".repeat(w.saturating_sub(width(c))));
            l.push_str(c);
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line("metric", reports.iter().map(|(n, _)| *n).collect());
    for (name, cells) in &rows {
        line(name, cells.iter().map(String::as_str).collect());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------------------------

/// Matplotlib's tab10 palette, one colour per model.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// `[lo, hi]` of the finite positive values, widened by `factor` either side for a log axis.
fn log_range(values: impl Iterator<Item = f64>, factor: f64) -> Option<std::ops::Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let (lo, hi) = if lo == hi {
        (lo / 2.0, hi * 2.0)
    } else {
        (lo, hi)
    };
    Some(lo / factor..hi * factor)
}

fn linear_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let hi = values
        .filter(|v| v.is_finite())
        .fold(0f64, |hi, v| hi.max(v));
    0.0..if hi > 0.0 { hi * 1.08 } else { 1.0 }
}

struct Series<'a> {
    name: &'a str,
    points: Vec<(f64, f64)>,
}

/// Draws `series` (one line per model with a legend) with the given axes and writes the PNG.
fn plot_lines<X, Y>(
    series: &[Series<'_>],
    x_range: X,
    y_range: Y,
    x_desc: &str,
    y_desc: &str,
    path: &Path,
    title: &str,
) -> Result<(), FigureError>
where
    X: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    figures::ensure_font_registered()?;
    let (width, height) = ANALYSIS_PLOT_SIZE;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let draw_error = |e: &dyn std::fmt::Display| FigureError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 26))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| draw_error(&e))?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .label_style((FONT_FAMILY, 16))
            .axis_desc_style((FONT_FAMILY, 18))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| draw_error(&e))?;
        for (i, s) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(
                    LineSeries::new(s.points.iter().copied(), color.stroke_width(2)).point_size(3),
                )
                .map_err(|e| draw_error(&e))?
                .label(s.name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT_FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_error(&e))?;
        root.present().map_err(|e| draw_error(&e))?;
    }
    let image = RgbImage::from_raw(width, height, rgb).expect("buffer sized from the plot size");
    figures::write_png_bytes(figures::encode_png(&image, path)?, path)
}

fn nothing_to_plot(path: &Path, what: &str) -> FigureError {
    FigureError::Draw {
        path: path.to_path_buf(),
        message: format!("no positive finite {what} to plot"),
    }
}

/// The contraction ratio against the radius (log x axis), one line per named model, as a PNG of
/// [`ANALYSIS_PLOT_SIZE`]. Non-finite or non-positive radii are left out.
pub fn plot_contraction_curves(
    curves: &[(&str, &[(f64, f64)])],
    path: &Path,
    title: &str,
) -> Result<(), FigureError> {
    let series: Vec<Series> = curves
        .iter()
        .map(|(name, points)| Series {
            name,
            points: points
                .iter()
                .copied()
                .filter(|(r, y)| r.is_finite() && *r > 0.0 && y.is_finite())
                .collect(),
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let x = log_range(all().map(|p| p.0), 1.2).ok_or_else(|| nothing_to_plot(path, "radii"))?;
    let y = linear_range(all().map(|p| p.1));
    plot_lines(
        &series,
        x.log_scale(),
        y,
        "radius r of the input perturbation",
        "mean ‖f(x) − f(x + r·u)‖ / r",
        path,
        title,
    )
}

/// Mean singular values of the encoder Jacobian against their rank (log y axis), one line per
/// named model, as a PNG of [`ANALYSIS_PLOT_SIZE`]. Zero singular values are left out.
pub fn plot_spectra(
    spectra: &[(&str, &[f64])],
    path: &Path,
    title: &str,
) -> Result<(), FigureError> {
    let series: Vec<Series> = spectra
        .iter()
        .map(|(name, values)| Series {
            name,
            points: values
                .iter()
                .enumerate()
                .map(|(i, &s)| ((i + 1) as f64, s))
                .filter(|(_, s)| s.is_finite() && *s > 0.0)
                .collect(),
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.points.iter().copied());
    let y = log_range(all().map(|p| p.1), 1.3)
        .ok_or_else(|| nothing_to_plot(path, "singular values"))?;
    let k = all().map(|p| p.0).fold(1f64, f64::max);
    plot_lines(
        &series,
        0.5..k + 0.5,
        y.log_scale(),
        "rank i",
        "mean i-th singular value of J(x)",
        path,
        title,
    )
}
