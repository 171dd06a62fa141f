//! Reconstruction over a whole set: the loss (BCE or MSE) per value overall and per class, and,
//! from the same pass,
//! the mean `‖J(x)‖_F` (the figure training logs as `mean_jacobian_frobenius`).
use std::collections::BTreeMap;

use cae_core::{ContractiveAutoencoder, ReconstructionLoss};
use cae_data::Dataset;
use candle_core::Device;
use serde::{Deserialize, Serialize};

use super::EVAL_BATCH;
use crate::eval::for_each_sample_batch;
use crate::TrainError;

/// Reconstruction loss per value over a whole set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionReport {
    /// The model's reconstruction loss, which the figures are of (BCE in reports written before
    /// the squared error existed).
    #[serde(default)]
    pub loss: ReconstructionLoss,
    /// Mean loss per value over every sample (`overall_bce` in earlier reports).
    #[serde(alias = "overall_bce")]
    pub overall: f64,
    /// `(label, count, mean loss per value of that class)`, by label, for every label present.
    /// `Σ count·loss / Σ count == overall`.
    pub per_class: Vec<(u8, usize, f64)>,
}

/// Loss per value of the reconstruction of every sample of `data`, in the model's input space
/// ([`ContractiveAutoencoder::sample_reconstruction_loss`],
/// the figure training reports as `test_reconstruction`), overall and per class, and the mean `‖J(x)‖_F`
/// (the square roots of `model.jacobian_sq_norm(x)`, so a Hutchinson model gives its estimate),
/// in one pass of batches of [`EVAL_BATCH`], summed in f64. Both are NaN for an empty set.
pub fn reconstruction_by_class(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<(ReconstructionReport, f64), TrainError> {
    let mut sums: BTreeMap<u8, (usize, f64)> = BTreeMap::new();
    let (mut total, mut frobenius) = (0.0, 0.0);
    for_each_sample_batch(model, data, EVAL_BATCH, device, |batch| {
        frobenius += batch.frobenius_sum();
        for (&label, &b) in batch.labels.iter().zip(&batch.reconstruction) {
            let entry = sums.entry(label).or_insert((0, 0.0));
            entry.0 += 1;
            entry.1 += b;
            total += b;
        }
    })?;
    let mean = |sum: f64| {
        if data.is_empty() {
            f64::NAN
        } else {
            sum / data.len() as f64
        }
    };
    let report = ReconstructionReport {
        loss: model.config().loss,
        overall: mean(total),
        per_class: sums
            .into_iter()
            .map(|(label, (count, sum))| (label, count, sum / count as f64))
            .collect(),
    };
    Ok((report, mean(frobenius)))
}
