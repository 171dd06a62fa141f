//! [`TrainConfig`]: everything that defines a training run besides the model (epochs, batch size,
//! Adam, λ, the learning-rate schedule, CAE+H), its checks, and one training step.
use cae_core::{ContractiveAutoencoder, HessianPenalty, StepOutput};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::optim::{AdamConfig, AdamParams};
use crate::TrainError;

/// How the learning rate moves over the run.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout (the original program).
    #[default]
    Constant,
    /// Cosine decay from the base rate at the first step to `final_fraction` × base at the last.
    Cosine {
        /// The rate at the last step, as a fraction of the base rate.
        final_fraction: f64,
    },
}

impl LrSchedule {
    /// Where [`LrSchedule::cosine`] ends: 1% of the base rate.
    pub const COSINE_FINAL_FRACTION: f64 = 0.01;

    /// Cosine decay to [`Self::COSINE_FINAL_FRACTION`] of the base rate.
    pub fn cosine() -> Self {
        LrSchedule::Cosine {
            final_fraction: Self::COSINE_FINAL_FRACTION,
        }
    }

    /// Rejects a schedule whose rates leave [0, base].
    pub fn validate(self) -> Result<(), TrainError> {
        match self {
            LrSchedule::Cosine { final_fraction } if !(0.0..=1.0).contains(&final_fraction) => {
                Err(TrainError::InvalidConfig(format!(
                    "cosine final fraction must be in [0, 1], got {final_fraction}"
                )))
            }
            _ => Ok(()),
        }
    }

    /// Learning rate at optimiser step `step` (0-based) of a run of `total_steps` steps.
    pub fn rate_at_step(self, base: f64, step: usize, total_steps: usize) -> f64 {
        self.rate(base, step as f64 / total_steps.max(1) as f64)
    }

    /// Learning rate after `progress` ∈ [0, 1] of the run.
    pub fn rate(self, base: f64, progress: f64) -> f64 {
        match self {
            LrSchedule::Constant => base,
            LrSchedule::Cosine { final_fraction } => {
                let cos = 0.5 * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos());
                base * (final_fraction + (1.0 - final_fraction) * cos)
            }
        }
    }
}

/// Everything that defines a training run besides the model. The defaults are the original program's:
/// Adam (β 0.9/0.999, ε 1e-8, no weight decay), lr 5e-3, 20 epochs, minibatch 600, λ 1e-4.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Epochs in the run (the total, counting epochs already trained on resume).
    pub epochs: usize,
    /// Samples per Adam step.
    pub batch_size: usize,
    /// Adam's base learning rate.
    pub learning_rate: f64,
    /// How the learning rate moves over the run.
    pub lr_schedule: LrSchedule,
    /// Adam's other hyper-parameters.
    pub adam: AdamParams,
    /// Weight λ of the Jacobian penalty.
    pub lambda: f64,
    /// Seeds the initial weights, the shuffling and the Hutchinson probes.
    pub seed: u64,
    /// Batch size of the test-set evaluation after each epoch (memory only; the result does not depend on it).
    pub eval_batch_size: usize,
    /// Use only the first N training samples (quick experiments); `None`: all.
    pub train_limit: Option<usize>,
    /// Use only the first N test samples; `None`: all.
    pub test_limit: Option<usize>,
    /// The CAE+H term (Rifai et al., ECML 2011) added to the objective; `None`: the plain CAE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hessian: Option<HessianPenalty>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 20,
            batch_size: 600,
            learning_rate: 5e-3,
            lr_schedule: LrSchedule::Constant,
            adam: AdamParams::default(),
            lambda: 1e-4,
            seed: 42,
            eval_batch_size: 1000,
            train_limit: None,
            test_limit: None,
            hessian: None,
        }
    }
}

impl TrainConfig {
    /// The optimizer this configuration starts with: its Adam parameters at its base learning rate.
    pub fn adam_config(&self) -> AdamConfig {
        AdamConfig {
            params: self.adam,
            learning_rate: self.learning_rate,
        }
    }

    /// Rejects settings that cannot train, before any work is done.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.epochs == 0 {
            return bad("epochs must be at least 1".into());
        }
        if self.batch_size == 0 {
            return bad("batch size must be at least 1".into());
        }
        if self.eval_batch_size == 0 {
            return bad("evaluation batch size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning rate must be a positive number, got {}",
                self.learning_rate
            ));
        }
        if !(self.lambda.is_finite() && self.lambda >= 0.0) {
            return bad(format!(
                "λ (lambda) must be zero or positive, got {}",
                self.lambda
            ));
        }
        self.adam.validate()?;
        self.lr_schedule.validate()?;
        if let Some(h) = &self.hessian {
            h.validate()
                .map_err(|e| TrainError::InvalidConfig(e.to_string()))?;
        }
        if self.train_limit == Some(0) || self.test_limit == Some(0) {
            return bad("a sample limit must be at least 1".into());
        }
        Ok(())
    }
}

impl TrainConfig {
    /// One step's loss and gradients on the batch `x` under this configuration's objective:
    /// the CAE's, plus the CAE+H term when set.
    pub fn step(&self, model: &ContractiveAutoencoder, x: &Tensor) -> cae_core::Result<StepOutput> {
        match &self.hessian {
            Some(h) => model.hessian_step(x, self.lambda, h),
            None => model.loss_and_gradients(x, self.lambda),
        }
    }
}
/// A 64-bit seed for (seed, epoch, batch) (splitmix64 finaliser).
pub(crate) fn mix(seed: u64, epoch: usize, batch: usize) -> u64 {
    let mut z = seed ^ ((epoch as u64) << 32) ^ batch as u64;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
