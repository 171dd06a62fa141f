//! CAE+H (Rifai et al., ECML 2011): the first-order penalty plus
//! `γ · E_ε ‖J(x) − J(x + ε)‖²_F` with `ε ~ N(0, σ²I)`, which penalises the curvature of the
//! encoder (the change of its Jacobian) around each training point.
//!
//! The expectation is estimated with `copies` corrupted copies of each input, as in the paper;
//! each copy's term is exact: for one-layer encoders the closed form
//! `Σ_j (g'(a_j) − g'(a_j + (Wε)_j))² ‖W_j‖²`, for deeper MLPs the two Jacobians subtracted. Both
//! are built from forward ops, so `backward()` differentiates them.
use candle_core::{Device, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::model::{Loss, StepOutput};
use crate::{CaeError, ContractiveAutoencoder, Result};

/// The settings of the CAE+H term.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HessianPenalty {
    /// Weight γ of `E_ε ‖J(x) − J(x + ε)‖²_F`.
    pub gamma: f64,
    /// Standard deviation σ of the Gaussian corruption ε.
    pub sigma: f64,
    /// Corrupted copies of each input per step (the Monte Carlo estimate of the expectation).
    pub copies: usize,
}

impl HessianPenalty {
    /// The corruption's standard deviation σ when none is chosen: 0.1, a tenth of the pixel range,
    /// small enough for `J(x + ε)` to describe the neighbourhood of `x`.
    pub const DEFAULT_SIGMA: f64 = 0.1;
    /// Corrupted copies per input when none is chosen: 4, whose estimate has half the standard
    /// deviation of one copy's, at four times its cost.
    pub const DEFAULT_COPIES: usize = 4;

    /// Rejects settings the penalty cannot use; the message says which and why.
    pub fn validate(&self) -> Result<()> {
        if !(self.gamma.is_finite() && self.gamma >= 0.0) {
            return Err(CaeError::InvalidConfig(format!(
                "the CAE+H weight γ must be zero or positive, got {}",
                self.gamma
            )));
        }
        if !(self.sigma.is_finite() && self.sigma > 0.0) {
            return Err(CaeError::InvalidConfig(format!(
                "the CAE+H corruption σ must be positive, got {}",
                self.sigma
            )));
        }
        if self.copies == 0 {
            return Err(CaeError::InvalidConfig(
                "CAE+H needs at least one corrupted copy per input".into(),
            ));
        }
        Ok(())
    }
}

impl ContractiveAutoencoder {
    /// Per-sample `mean_c ‖J(x) − J(x + ε_c)‖²_F`, `[B]`, for given corruptions
    /// `noise: [copies, B, input]`. MLP encoders only.
    pub fn jacobian_change_sq_norm(&self, x: &Tensor, noise: &Tensor) -> Result<Tensor> {
        let mlp = self.mlp_network().ok_or_else(|| {
            CaeError::InvalidConfig("CAE+H is implemented for MLP encoders only".into())
        })?;
        let (copies, batch, input) = noise.dims3()?;
        let clean = mlp.encode_trace(x)?;
        let mut sum: Option<Tensor> = None;
        for c in 0..copies {
            let corrupted = (x + noise.get(c)?)?;
            let trace = mlp.encode_trace(&corrupted.reshape((batch, input))?)?;
            let term = mlp.jacobian_difference_sq_norm(&clean, &trace)?;
            sum = Some(match sum {
                Some(s) => (s + term)?,
                None => term,
            });
        }
        let sum = sum.ok_or_else(|| CaeError::InvalidConfig("no corrupted copies".into()))?;
        Ok((sum / copies as f64)?)
    }

    /// `copies` Gaussian corruptions of standard deviation `sigma` per input, `[copies, B, input]`,
    /// from the model's seeded generator (the one the Hutchinson probes use).
    pub fn gaussian_noise(&self, copies: usize, sigma: f64, x: &Tensor) -> Result<Tensor> {
        let (b, d) = x.dims2()?;
        let values: Vec<f32> = {
            let mut rng = self.probe_generator();
            (0..copies * b * d)
                .map(|_| {
                    // Box–Muller: u1 in (0, 1] keeps the logarithm finite.
                    let u1 = 1.0 - rng.random::<f64>();
                    let u2 = rng.random::<f64>();
                    let normal = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
                    (sigma * normal) as f32
                })
                .collect()
        };
        Ok(Tensor::from_vec(values, (copies, b, d), &Device::Cpu)?
            .to_dtype(x.dtype())?
            .to_device(x.device())?)
    }

    /// The CAE+H objective on a batch: mean BCE + `λ` × mean ‖J‖²_F + `γ` × mean
    /// ‖J(x) − J(x + ε)‖²_F, with fresh corruptions from the model's generator. `penalty` holds
    /// both penalty terms.
    pub fn loss_with_hessian(&self, x: &Tensor, lambda: f64, h: &HessianPenalty) -> Result<Loss> {
        Ok(self.loss_and_hessian_term(x, lambda, h)?.0)
    }

    /// [`Self::loss_with_hessian`] and its CAE+H term (`γ` × mean change) alone.
    fn loss_and_hessian_term(
        &self,
        x: &Tensor,
        lambda: f64,
        h: &HessianPenalty,
    ) -> Result<(Loss, Tensor)> {
        h.validate()?;
        let first_order = self.loss(x, lambda)?;
        let noise = self.gaussian_noise(h.copies, h.sigma, x)?;
        let term = (self.jacobian_change_sq_norm(x, &noise)?.mean(0)? * h.gamma)?;
        let penalty = (&first_order.penalty + &term)?;
        let total = (&first_order.reconstruction + &penalty)?;
        let loss = Loss {
            penalty,
            total,
            ..first_order
        };
        Ok((loss, term.detach()))
    }

    /// [`Self::loss_with_hessian`] and its gradient with respect to every parameter (candle's
    /// autograd, in slices of [`Self::autograd_rows_per_pass`] samples).
    pub fn hessian_step(&self, x: &Tensor, lambda: f64, h: &HessianPenalty) -> Result<StepOutput> {
        self.sliced_autograd_step(x, lambda, |slice| {
            let (loss, term) = self.loss_and_hessian_term(slice, lambda, h)?;
            Ok((loss, Some(term)))
        })
    }
}
