//! The reconstruction loss a model is trained with, and the input standardisation that goes with
//! the squared error.
//!
//! Binary cross-entropy (the papers' loss) compares sigmoid outputs with inputs in [0, 1]. Real-
//! valued data (sensor readings, features) takes the mean squared error on linear outputs instead,
//! usually after standardising every input feature to mean 0 and spread 1 on the training split:
//! then the loss, the penalty `‖∂code/∂x‖²_F` and the learning rate mean the same whatever the
//! features' units. Both choices are part of a model's [`crate::CaeConfig`], so a saved model
//! standardises its inputs itself (see [`crate::ContractiveAutoencoder::prepare_inputs`]).
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::loss::bce_elements;
use crate::{CaeError, Result};

/// The loss between an input and its reconstruction, with the output units it goes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconstructionLoss {
    /// Binary cross-entropy per value between `sigmoid(outputs)` and inputs in [0, 1].
    #[default]
    Bce,
    /// Mean squared error per value between linear outputs and the inputs (standardised when
    /// the model stores a [`Standardisation`]).
    Mse,
}

impl ReconstructionLoss {
    /// Whether this is the binary cross-entropy (the default, not written into config files).
    pub fn is_bce(&self) -> bool {
        *self == Self::Bce
    }

    /// The short lower-case name used in flags, metrics keys and reports: `bce` or `mse`.
    pub fn key(self) -> &'static str {
        match self {
            Self::Bce => "bce",
            Self::Mse => "mse",
        }
    }

    /// The loss of every element between the decoder's `outputs` (logits for BCE) and `targets`.
    pub fn elements(self, outputs: &Tensor, targets: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Bce => bce_elements(outputs, targets)?,
            Self::Mse => (outputs - targets)?.sqr()?,
        })
    }

    /// The reconstruction the decoder's `outputs` stand for: `sigmoid(outputs)` for BCE, the
    /// outputs themselves for MSE.
    pub fn reconstruction(self, outputs: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Bce => candle_nn::ops::sigmoid(outputs)?,
            Self::Mse => outputs.clone(),
        })
    }
}

/// Per-feature `(x − mean) / scale`, fitted on a training split and stored with the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Standardisation {
    /// Each feature's mean.
    pub mean: Vec<f64>,
    /// Each feature's standard deviation (1 for a feature constant on the training split).
    pub scale: Vec<f64>,
}

impl Standardisation {
    /// A spread below this (relative to the feature's magnitude, or absolute near 0) counts as
    /// constant: dividing by it would blow rounding noise up into large inputs.
    const CONSTANT_SPREAD: f64 = 1e-6;

    /// From per-feature means and standard deviations (e.g. computed in f64 over a training
    /// split); a feature that is constant there gets scale 1, so it only loses its offset.
    pub fn from_moments(mean: Vec<f64>, std: Vec<f64>) -> Result<Self> {
        if mean.len() != std.len() {
            return Err(CaeError::InvalidConfig(format!(
                "standardisation: {} means but {} standard deviations",
                mean.len(),
                std.len()
            )));
        }
        let scale = mean
            .iter()
            .zip(&std)
            .map(|(m, s)| {
                if *s > Self::CONSTANT_SPREAD * m.abs().max(1.0) {
                    *s
                } else {
                    1.0
                }
            })
            .collect();
        let standardisation = Self { mean, scale };
        standardisation.validate(standardisation.mean.len())?;
        Ok(standardisation)
    }

    /// The number of features.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Checks `input_dim` features, finite means and positive finite scales.
    pub fn validate(&self, input_dim: usize) -> Result<()> {
        let bad = |m: String| Err(CaeError::InvalidConfig(format!("standardisation: {m}")));
        if self.mean.len() != input_dim || self.scale.len() != input_dim {
            return bad(format!(
                "{} means and {} scales for {input_dim} input values",
                self.mean.len(),
                self.scale.len()
            ));
        }
        if let Some(i) = self.mean.iter().position(|m| !m.is_finite()) {
            return bad(format!("the mean of feature {i} is {}", self.mean[i]));
        }
        if let Some(i) = self.scale.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return bad(format!("the scale of feature {i} is {}", self.scale[i]));
        }
        Ok(())
    }

    /// The means and scales as `[1, D]` tensors of `dtype` on `device`, for [`Self::apply`] and
    /// [`Self::invert`].
    pub(crate) fn tensors(&self, dtype: DType, device: &Device) -> Result<(Tensor, Tensor)> {
        let row = |v: &[f64]| -> Result<Tensor> {
            Ok(Tensor::from_slice(v, (1, v.len()), &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?)
        };
        Ok((row(&self.mean)?, row(&self.scale)?))
    }
}

/// `(x − mean) / scale` with the tensors of [`Standardisation::tensors`].
pub(crate) fn standardise(x: &Tensor, (mean, scale): &(Tensor, Tensor)) -> Result<Tensor> {
    Ok(x.broadcast_sub(mean)?.broadcast_div(scale)?)
}

/// `z · scale + mean`, the inverse of [`standardise`].
pub(crate) fn unstandardise(z: &Tensor, (mean, scale): &(Tensor, Tensor)) -> Result<Tensor> {
    Ok(z.broadcast_mul(scale)?.broadcast_add(mean)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_features_keep_scale_one_and_the_rest_round_trip() {
        let s = Standardisation::from_moments(vec![2.0, -1.0, 5.0], vec![0.5, 0.0, 3.0]).unwrap();
        assert_eq!(s.scale, vec![0.5, 1.0, 3.0]);
        let t = s.tensors(DType::F64, &Device::Cpu).unwrap();
        let x = Tensor::new(&[[3.0f64, -1.0, 11.0], [2.0, 4.0, -1.0]], &Device::Cpu).unwrap();
        let z = standardise(&x, &t).unwrap();
        assert_eq!(
            z.to_vec2::<f64>().unwrap(),
            vec![vec![2.0, 0.0, 2.0], vec![0.0, 5.0, -2.0]]
        );
        let back = unstandardise(&z, &t).unwrap();
        assert_eq!(back.to_vec2::<f64>().unwrap(), x.to_vec2::<f64>().unwrap());
    }

    #[test]
    fn bad_moments_are_refused() {
        assert!(Standardisation::from_moments(vec![0.0], vec![1.0, 2.0]).is_err());
        assert!(Standardisation::from_moments(vec![f64::NAN], vec![1.0]).is_err());
        let s = Standardisation {
            mean: vec![0.0],
            scale: vec![-1.0],
        };
        assert!(s.validate(1).unwrap_err().to_string().contains("scale"));
        assert!(s.validate(2).is_err());
    }

    #[test]
    fn mse_elements_are_squared_differences_and_outputs_stay_linear() {
        let out = Tensor::new(&[[0.5f32, -2.0]], &Device::Cpu).unwrap();
        let target = Tensor::new(&[[1.0f32, 1.0]], &Device::Cpu).unwrap();
        let e = ReconstructionLoss::Mse.elements(&out, &target).unwrap();
        assert_eq!(e.to_vec2::<f32>().unwrap(), vec![vec![0.25, 9.0]]);
        let r = ReconstructionLoss::Mse.reconstruction(&out).unwrap();
        assert_eq!(r.to_vec2::<f32>().unwrap(), out.to_vec2::<f32>().unwrap());
        let b = ReconstructionLoss::Bce.reconstruction(&out).unwrap();
        assert!((b.to_vec2::<f32>().unwrap()[0][0] - 0.622_459_3).abs() < 1e-6);
    }
}
