use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use candle_core::{Device, Tensor};

use crate::TrainError;

/// The model measured on a whole dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// Mean BCE per pixel over every sample.
    pub bce: f64,
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
    let n = data.len();
    // The loss keeps its whole graph (the weights are variables) until it is dropped: slices no
    // larger than a training pass's keep the peak memory of evaluation within training's.
    let batch_size = batch_size.clamp(1, cae_core::AUTOGRAD_ROWS_PER_PASS);
    let (mut bce_sum, mut sq_sum, mut fro_sum) = (0.0, 0.0, 0.0);
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let x = data.to_tensor(start..end, device)?;
        let loss = model.loss(&x, 0.0)?;
        let rows = (end - start) as f64;
        bce_sum += scalar(&loss.bce)? * rows;
        let sq = &loss.sample_jacobian_sq_norms;
        sq_sum += scalar(&sq.sum_all()?)?;
        fro_sum += scalar(&sq.sqrt()?.sum_all()?)?;
    }
    let n = n.max(1) as f64;
    Ok(Evaluation {
        bce: bce_sum / n,
        jacobian_sq_norm: sq_sum / n,
        jacobian_frobenius: fro_sum / n,
    })
}

pub(crate) fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()
}
