//! Every measurement together: [`EvalOptions`] says what to measure, [`analyse`] measures it into
//! an [`EvalReport`] (what `cae-cli eval --json` writes).
use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{
    codes_are_sigmoid, contraction_curve, invalid, mean_spectrum, point_spectra, probe_codes,
    reconstruction_by_class, saturation, ProbeReport, ReconstructionReport, SpectrumSignature,
};
use crate::TrainError;

/// What [`analyse`] measures and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOptions {
    /// Test points (the first ones) for the contraction curve.
    pub contraction_points: usize,
    /// Radii `r` of the contraction curve's perturbations.
    pub radii: Vec<f64>,
    /// Random directions per point and radius in the contraction curve.
    pub samples_per_point: usize,
    /// Test points (the first ones) whose Jacobian spectra are averaged.
    pub spectrum_points: usize,
    /// Singular values kept.
    pub spectrum_k: usize,
    /// Linear-probe epochs; 0 skips the probe.
    pub probe_epochs: usize,
    /// Learning rate of the linear probe.
    pub probe_lr: f64,
    /// Seed of the contraction curve's random directions.
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
    /// Reconstruction loss (the model's, BCE or MSE) per value, overall and per class.
    pub reconstruction: ReconstructionReport,
    /// Mean `‖J(x)‖_F` over the test set (from the reconstruction's pass).
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

/// Runs every metric on `test` (and the probe, trained on `train` when given). Both are as read:
/// a model that standardises its inputs is measured on them standardised (radii and Jacobians
/// are then in standard units).
pub fn analyse(
    model: &ContractiveAutoencoder,
    train: Option<&Dataset>,
    test: &Dataset,
    opts: &EvalOptions,
    device: &Device,
) -> Result<EvalReport, TrainError> {
    // The first `n` test samples, in the model's input space.
    let first = |n: usize| -> Result<Tensor, TrainError> {
        Ok(model.prepare_inputs(&test.to_tensor(0..n.min(test.len()), device)?)?)
    };
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
    let (reconstruction, mean_jacobian_frobenius) = reconstruction_by_class(model, test, device)?;
    Ok(EvalReport {
        samples: test.len(),
        reconstruction,
        mean_jacobian_frobenius,
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
