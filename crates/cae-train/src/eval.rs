//! The figures training reports on the test set after every epoch (reconstruction loss,
//! `‖J‖²_F`, `‖J‖_F`), and the one walk over a dataset that computes them, shared with
//! `cae-cli eval`'s reconstruction report. Datasets here are as read: each batch goes through the
//! model's `prepare_inputs`.
use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use candle_core::Device;

use crate::TrainError;

/// The model measured on a whole dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean reconstruction loss (the model's, BCE or MSE) per value over every sample.
    pub reconstruction: f64,
    /// Mean `‖J‖²_F` over every sample.
    pub jacobian_sq_norm: f64,
    /// Mean `‖J‖_F` over every sample.
    pub jacobian_frobenius: f64,
}

/// Evaluates on all of `data`, `batch_size` samples at a time (the result does not depend on it).
pub fn evaluate(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    batch_size: usize,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    // The loss keeps its whole graph (the weights are variables) until it is dropped: slices no
    // larger than a training pass's keep the peak memory of evaluation within training's.
    let batch_size = batch_size.clamp(1, cae_core::AUTOGRAD_ROWS_PER_PASS);
    // Every figure is accumulated in f64 (see `cae_core::sum_f64`); the loss comes from
    // `sample_reconstruction_loss`, as `cae-cli eval`'s does, so that both report the same number.
    let (mut loss_sum, mut sq_sum, mut fro_sum) = (0.0, 0.0, 0.0);
    for_each_sample_batch(model, data, batch_size, device, |batch| {
        loss_sum += batch.reconstruction.iter().sum::<f64>();
        sq_sum += batch.jacobian_sq_norm.iter().sum::<f64>();
        fro_sum += batch.frobenius_sum();
    })?;
    let n = data.len().max(1) as f64;
    Ok(Evaluation {
        reconstruction: loss_sum / n,
        jacobian_sq_norm: sq_sum / n,
        jacobian_frobenius: fro_sum / n,
    })
}

/// One batch's per-sample figures, see [`for_each_sample_batch`].
pub(crate) struct SampleFigures<'a> {
    /// The label of each sample.
    pub labels: &'a [u8],
    /// Reconstruction loss per value of each sample
    /// ([`ContractiveAutoencoder::sample_reconstruction_loss`]).
    pub reconstruction: Vec<f64>,
    /// `‖J(x)‖²_F` of each sample ([`ContractiveAutoencoder::jacobian_sq_norm`]).
    pub jacobian_sq_norm: Vec<f64>,
}

impl SampleFigures<'_> {
    /// `Σ ‖J(x)‖_F` over the batch (negative rounding of a square clamped to 0).
    pub fn frobenius_sum(&self) -> f64 {
        self.jacobian_sq_norm
            .iter()
            .map(|s| s.max(0.0).sqrt())
            .sum::<f64>()
    }
}

/// Walks all of `data` in order, `batch_size` samples at a time, and hands `visit` each batch's
/// per-sample reconstruction loss and `‖J‖²_F`, both at the batch mapped into the model's input
/// space (`prepare_inputs`; `data` is as read): the one pass behind [`evaluate`] and
/// [`crate::analysis::reconstruction_by_class`], each summing in its own (fixed) order.
pub(crate) fn for_each_sample_batch(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    batch_size: usize,
    device: &Device,
    mut visit: impl FnMut(SampleFigures<'_>),
) -> Result<(), TrainError> {
    for batch in data.batches(batch_size, device) {
        let batch = batch?;
        let x = model.prepare_inputs(&batch.images)?;
        let reconstruction = model.sample_reconstruction_loss(&x)?;
        let jacobian_sq_norm = cae_core::to_host_f64(&model.jacobian_sq_norm(&x)?)?;
        visit(SampleFigures {
            labels: &batch.labels,
            reconstruction,
            jacobian_sq_norm,
        });
    }
    Ok(())
}
