//! A model run over a dataset's samples in batches, for `encode` and `reconstruct`: each batch
//! mapped into the model's input space (`prepare_inputs`), its codes or its reconstructions
//! (mapped back into the data's units by `restore_outputs`) kept in input order, and, when asked,
//! each sample's scores: its reconstruction loss and the Frobenius norm of the encoder's Jacobian.
use anyhow::Result;
use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use candle_core::{DType, Device, Tensor};

/// Samples per batch: memory stays bounded by the batch, whatever the number of samples.
pub const BATCH: usize = 256;

/// What the run keeps of each sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produce {
    /// The code `g(x)`, flattened.
    Codes,
    /// The reconstruction, in the data's units.
    Reconstructions,
}

/// One sample's anomaly scores.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Score {
    /// The reconstruction loss the model was trained with, per value (`sample_reconstruction_loss`).
    pub reconstruction_loss: f64,
    /// `‖J(x)‖_F`, the encoder's Jacobian at the sample (in the model's input space); an unbiased
    /// estimate of its square for models trained with the Hutchinson penalty.
    pub jacobian_frobenius: f64,
}

/// What the run kept, sample after sample.
#[derive(Debug)]
pub struct PerSample {
    /// `samples × width` values, row-major.
    pub values: Vec<f32>,
    /// Values per sample.
    pub width: usize,
    /// One per sample when asked for, else empty.
    pub scores: Vec<Score>,
}

/// Runs `model` over every sample of `data`, in order, [`BATCH`] at a time.
pub fn run(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
    produce: Produce,
    with_scores: bool,
) -> Result<PerSample> {
    let mut out = PerSample {
        values: Vec::new(),
        width: 0,
        scores: Vec::new(),
    };
    for batch in data.batches(BATCH, device) {
        let x = model.prepare_inputs(&batch?.images)?;
        let kept = match produce {
            Produce::Codes => model.encode(&x)?,
            Produce::Reconstructions => model.restore_outputs(&model.reconstruct(&x)?)?,
        };
        let kept = kept.flatten_from(1)?.to_dtype(DType::F32)?;
        out.width = kept.dim(1)?;
        out.values.extend(kept.flatten_all()?.to_vec1::<f32>()?);
        if with_scores {
            out.scores.extend(scores(model, &x)?);
        }
    }
    Ok(out)
}

/// The scores of a batch `x` in the model's input space.
fn scores(model: &ContractiveAutoencoder, x: &Tensor) -> Result<Vec<Score>> {
    let losses = model.sample_reconstruction_loss(x)?;
    let squares = model
        .jacobian_sq_norm(x)?
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    Ok(losses
        .into_iter()
        .zip(squares)
        .map(|(reconstruction_loss, sq)| Score {
            reconstruction_loss,
            // A Hutchinson estimate of a small square can fall below zero.
            jacobian_frobenius: sq.max(0.0).sqrt(),
        })
        .collect())
}
