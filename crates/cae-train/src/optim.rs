//! Adam (Kingma & Ba 2015) with decoupled weight decay, whose state can be saved and restored so a
//! resumed run continues exactly where it stopped.
use std::collections::BTreeMap;

use candle_core::{backprop::GradStore, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

/// Adam hyperparameters. The defaults are PyTorch's `torch.optim.Adam` (no weight decay), which the
/// original program used; note that candle-nn's `ParamsAdamW::default()` has weight decay 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamParams {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled (AdamW) weight decay; 0 gives plain Adam.
    pub weight_decay: f64,
}

impl Default for AdamParams {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

#[derive(Debug)]
struct Slot {
    name: String,
    var: Var,
    first_moment: Tensor,
    second_moment: Tensor,
}

/// Adam over a named set of variables.
#[derive(Debug)]
pub struct Adam {
    params: AdamParams,
    slots: Vec<Slot>,
    step: u64,
}

impl Adam {
    /// `vars` in a fixed order (sorted by name, for reproducible state files).
    pub fn new(vars: BTreeMap<String, Var>, params: AdamParams) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let zeros = var.as_tensor().zeros_like()?;
                Ok(Slot {
                    name,
                    var,
                    first_moment: zeros.clone(),
                    second_moment: zeros,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            params,
            slots,
            step: 0,
        })
    }

    /// Number of updates applied so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One update with learning rate `lr` from the gradients in `grads` (variables without one are left alone).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        let AdamParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let t = self.step as i32;
        // Bias corrections folded into the step size, as in the paper's efficient form.
        let step_size = lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
        let eps_hat = eps * (1.0 - beta2.powi(t)).sqrt();
        for slot in &mut self.slots {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            slot.first_moment = ((&slot.first_moment * beta1)? + (g * (1.0 - beta1))?)?;
            slot.second_moment = ((&slot.second_moment * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let mut w = slot.var.as_tensor().clone();
            if weight_decay != 0.0 {
                w = (w * (1.0 - lr * weight_decay))?;
            }
            let update = (&slot.first_moment / (slot.second_moment.sqrt()? + eps_hat)?)?;
            slot.var.set(&(w - (update * step_size)?)?)?;
        }
        Ok(())
    }

    /// The moments as named tensors (`<var>.m`, `<var>.v`), for saving.
    pub fn state_tensors(&self) -> BTreeMap<String, Tensor> {
        let mut out = BTreeMap::new();
        for s in &self.slots {
            out.insert(format!("{}.m", s.name), s.first_moment.clone());
            out.insert(format!("{}.v", s.name), s.second_moment.clone());
        }
        out
    }

    /// Restores moments saved by [`Adam::state_tensors`] and the step count.
    pub fn restore(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        step: u64,
    ) -> Result<()> {
        for s in &mut self.slots {
            for (suffix, target) in [("m", &mut s.first_moment), ("v", &mut s.second_moment)] {
                let key = format!("{}.{suffix}", s.name);
                let t = tensors.get(&key).ok_or_else(|| {
                    candle_core::Error::Msg(format!("optimizer state has no tensor `{key}`"))
                })?;
                if t.dims() != target.dims() {
                    candle_core::bail!(
                        "optimizer state `{key}` has shape {:?}, expected {:?}",
                        t.dims(),
                        target.dims()
                    );
                }
                *target = t.to_dtype(target.dtype())?.to_device(target.device())?;
            }
        }
        self.step = step;
        Ok(())
    }
}
