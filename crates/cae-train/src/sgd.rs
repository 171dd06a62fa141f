//! Stochastic gradient descent with heavy-ball momentum: gradient descent, as the CAE papers
//! (Rifai et al. 2011, before Adam) fine-tuned. Adam moves every weight by about the learning
//! rate whatever its gradient; SGD moves each in proportion to its gradient, which might keep
//! more of a pretrained start (on MNIST's validation split it did not fine-tune better: README,
//! "SGD instead of Adam").
//!
//! The update is PyTorch's `torch.optim.SGD` with momentum `μ` (no dampening, no Nesterov), plus
//! the same decoupled weight decay `d` as [`crate::Adam`]:
//! `v ← μ·v + g`, `w ← (1 − lr·d)·w − lr·v`, with `v` starting at 0.
use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use serde::{Deserialize, Serialize};

/// What [`Sgd`] is built with.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SgdConfig {
    /// The step size until [`Optimizer::set_learning_rate`] changes it.
    pub learning_rate: f64,
    /// Momentum `μ` in `[0, 1)`; 0 is plain SGD.
    pub momentum: f64,
    /// Decoupled weight decay: each step multiplies every weight by `1 − lr·d` first.
    pub weight_decay: f64,
}

impl SgdConfig {
    /// Rejects settings SGD cannot step with: a momentum outside `[0, 1)`, a negative or
    /// infinite weight decay (and NaN anywhere).
    pub fn validate(&self) -> std::result::Result<(), crate::TrainError> {
        if (0.0..1.0).contains(&self.momentum)
            && self.weight_decay >= 0.0
            && self.weight_decay.is_finite()
        {
            return Ok(());
        }
        Err(crate::TrainError::InvalidConfig(format!(
            "SGD settings out of range (momentum in [0, 1), a finite weight decay 0 or more): {self:?}"
        )))
    }
}

/// SGD with momentum over a set of variables.
#[derive(Debug)]
pub struct Sgd {
    config: SgdConfig,
    /// Each variable with its velocity, `None` until its first gradient.
    slots: Vec<(Var, Option<Tensor>)>,
}

impl Sgd {
    /// SGD over the variables of `varmap`.
    pub fn from_varmap(varmap: &VarMap, config: SgdConfig) -> Result<Self> {
        Self::new(
            crate::optim::named_vars(varmap).into_values().collect(),
            config,
        )
    }
}

impl Optimizer for Sgd {
    type Config = SgdConfig;

    fn new(vars: Vec<Var>, config: SgdConfig) -> Result<Self> {
        let slots = vars.into_iter().map(|var| (var, None)).collect();
        Ok(Self { config, slots })
    }

    /// One update from the gradients of the variables (variables without one are left alone).
    fn step(&mut self, grads: &GradStore) -> Result<()> {
        let SgdConfig {
            learning_rate: lr,
            momentum,
            weight_decay,
        } = self.config;
        for (var, velocity) in &mut self.slots {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let v = match velocity.take() {
                Some(v) if momentum > 0.0 => ((v * momentum)? + g)?,
                _ => g.clone(),
            };
            let w = match weight_decay {
                0.0 => var.as_tensor().clone(),
                d => (var.as_tensor() * (1.0 - lr * d))?,
            };
            var.set(&(w - (&v * lr)?)?)?;
            // Without momentum the next step never reads it: keep no copy of the gradient.
            *velocity = (momentum > 0.0).then_some(v);
        }
        Ok(())
    }

    fn learning_rate(&self) -> f64 {
        self.config.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.config.learning_rate = lr;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    /// Three steps on `f(w) = ½·Σ a_i w_i²` (gradient `a_i w_i`) against the recurrence written
    /// out in f64.
    #[test]
    fn steps_follow_the_momentum_recurrence_in_f64() {
        let a = [1.0f64, 0.5, -2.0];
        let w0 = [0.3f64, -1.2, 0.7];
        let config = SgdConfig {
            learning_rate: 0.1,
            momentum: 0.9,
            weight_decay: 0.05,
        };
        let var = Var::from_slice(&w0, 3, &Device::Cpu).unwrap();
        let coeffs = Tensor::new(&a, &Device::Cpu).unwrap();
        let mut sgd = Sgd::new(vec![var.clone()], config).unwrap();
        let (mut w, mut v) = (w0, [0.0f64; 3]);
        for _ in 0..3 {
            let loss = ((var.as_tensor().sqr().unwrap() * &coeffs)
                .unwrap()
                .sum_all()
                .unwrap()
                * 0.5)
                .unwrap();
            sgd.backward_step(&loss).unwrap();
            for i in 0..3 {
                v[i] = config.momentum * v[i] + a[i] * w[i];
                w[i] = (1.0 - config.learning_rate * config.weight_decay) * w[i]
                    - config.learning_rate * v[i];
            }
            let got: Vec<f64> = var.as_tensor().to_vec1().unwrap();
            for (g, e) in got.iter().zip(w) {
                assert!((g - e).abs() < 1e-12, "{got:?} against {w:?}");
            }
        }
        assert_eq!(var.dtype(), DType::F64);
    }

    #[test]
    fn without_momentum_it_is_plain_gradient_descent() {
        let var = Var::from_slice(&[2.0f32, -4.0], 2, &Device::Cpu).unwrap();
        let config = SgdConfig {
            learning_rate: 0.25,
            momentum: 0.0,
            weight_decay: 0.0,
        };
        let mut sgd = Sgd::new(vec![var.clone()], config).unwrap();
        for _ in 0..2 {
            // Gradient 2w: each step scales w by 1 − 0.25·2 = 0.5.
            let loss = var.as_tensor().sqr().unwrap().sum_all().unwrap();
            sgd.backward_step(&loss).unwrap();
        }
        assert_eq!(var.as_tensor().to_vec1::<f32>().unwrap(), [0.5, -1.0]);
        assert!(sgd.slots.iter().all(|(_, velocity)| velocity.is_none()));
    }

    #[test]
    fn rejects_momentum_outside_the_unit_interval() {
        for momentum in [1.0, -0.1, f64::NAN] {
            let config = SgdConfig {
                learning_rate: 0.1,
                momentum,
                weight_decay: 0.0,
            };
            assert!(config.validate().is_err(), "{momentum}");
        }
    }
}
