//! Saturation of the code units: the fraction of (sample, unit) pairs whose code sits on the flat
//! ends of a sigmoid, below [`SATURATION_LOW`] or above [`SATURATION_HIGH`].
use cae_core::{Activation, Architecture, ContractiveAutoencoder};
use cae_data::Dataset;
use candle_core::{DType, Device, Tensor};

use super::{to_f64_vec, EVAL_BATCH};
use crate::TrainError;

/// A code unit below this value counts as saturated low (see [`saturation`]).
pub const SATURATION_LOW: f64 = 0.05;
/// A code unit above this value counts as saturated high (see [`saturation`]).
pub const SATURATION_HIGH: f64 = 0.95;

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
    let mut saturated = 0.0;
    let mut total = 0usize;
    for batch in data.batches(EVAL_BATCH, device) {
        let codes = model.encode(&model.prepare_inputs(&batch?.images)?)?;
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
