use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use candle_core::Device;

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
    // Every figure is accumulated in f64 (see `cae_core::sum_f64`); the BCE comes from
    // `sample_bce`, as `cae-cli eval`'s does, so that both report the same number.
    let (mut bce_sum, mut sq_sum, mut fro_sum) = (0.0, 0.0, 0.0);
    for start in (0..n).step_by(batch_size) {
        let end = (start + batch_size).min(n);
        let x = data.to_tensor(start..end, device)?;
        bce_sum += model.sample_bce(&x)?.iter().sum::<f64>();
        let sq = cae_core::to_host_f64(&model.jacobian_sq_norm(&x)?)?;
        sq_sum += sq.iter().sum::<f64>();
        fro_sum += sq.iter().map(|s| s.max(0.0).sqrt()).sum::<f64>();
    }
    let n = n.max(1) as f64;
    Ok(Evaluation {
        bce: bce_sum / n,
        jacobian_sq_norm: sq_sum / n,
        jacobian_frobenius: fro_sum / n,
    })
}
