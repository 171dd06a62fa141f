//! Adam (Kingma & Ba 2015) with decoupled weight decay, whose state can be saved and restored so a
//! resumed run continues exactly where it stopped.
//!
//! [`Adam`] is a [`candle_nn::Optimizer`]: it updates the model's `Var`s from candle's gradients
//! ([`candle_core::backprop::GradStore`], or [`cae_core::Gradients::grad_store`]), keyed by the
//! variables themselves. Each variable also has a name (the model's parameter name) under which
//! its moments are saved.
use std::collections::{BTreeMap, HashMap};

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Result, Tensor, Var};
use candle_nn::{Optimizer, VarMap};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Adam hyperparameters. The defaults are PyTorch's `torch.optim.Adam` (no weight decay), which the
/// original program used; note that candle-nn's `ParamsAdamW::default()` has weight decay 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamParams {
    /// Decay rate of the first moment.
    pub beta1: f64,
    /// Decay rate of the second moment.
    pub beta2: f64,
    /// Added to the second moment's square root.
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

impl AdamParams {
    /// Rejects settings Adam cannot step with: β₁ and β₂ outside `[0, 1)`, ε not positive, a
    /// negative or infinite weight decay (and NaN anywhere).
    pub fn validate(&self) -> std::result::Result<(), crate::TrainError> {
        let in_unit = |b: f64| (0.0..1.0).contains(&b);
        if in_unit(self.beta1)
            && in_unit(self.beta2)
            && self.eps > 0.0
            && self.weight_decay >= 0.0
            && self.weight_decay.is_finite()
        {
            return Ok(());
        }
        Err(crate::TrainError::InvalidConfig(format!(
            "Adam settings out of range (β₁ and β₂ in [0, 1), ε above 0, a finite weight decay 0 or more): {self:?}"
        )))
    }
}

/// First and second moments: plain host vectors for f32 CPU variables (updated in one multi-threaded pass,
/// as candle's CPU element-wise ops are single-threaded), tensors elsewhere.
#[derive(Debug)]
enum Moments {
    Host(Vec<f32>, Vec<f32>),
    Device(Tensor, Tensor),
}

#[derive(Debug)]
struct Slot {
    var: Var,
    moments: Moments,
}

/// What [`Adam`] is built with, as a [`candle_nn::Optimizer`]: its hyperparameters and the
/// learning rate it starts with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    /// β₁, β₂, ε and weight decay.
    pub params: AdamParams,
    /// The step size until [`Optimizer::set_learning_rate`] changes it.
    pub learning_rate: f64,
}

/// Adam over a named set of variables.
#[derive(Debug)]
pub struct Adam {
    params: AdamParams,
    learning_rate: f64,
    slots: BTreeMap<String, Slot>,
    step: u64,
}

/// The variables of `varmap` by name.
pub(crate) fn named_vars(varmap: &VarMap) -> BTreeMap<String, Var> {
    varmap
        .data()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn on_host(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

impl Adam {
    /// Adam over the variables of `varmap`, named as there (the model's parameter names).
    pub fn from_varmap(varmap: &VarMap, config: AdamConfig) -> Result<Self> {
        Self::named(named_vars(varmap), config)
    }

    /// Adam over `vars`; their moments are saved and restored under these names.
    pub fn named(vars: BTreeMap<String, Var>, config: AdamConfig) -> Result<Self> {
        let slots = vars
            .into_iter()
            .map(|(name, var)| {
                let t = var.as_tensor();
                let moments = if on_host(t) {
                    Moments::Host(vec![0.0; t.elem_count()], vec![0.0; t.elem_count()])
                } else {
                    Moments::Device(t.zeros_like()?, t.zeros_like()?)
                };
                Ok((name, Slot { var, moments }))
            })
            .collect::<Result<BTreeMap<_, _>>>()?;
        Ok(Self {
            params: config.params,
            learning_rate: config.learning_rate,
            slots,
            step: 0,
        })
    }

    /// Number of updates applied so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One update from the gradients of the variables (variables without one are left alone).
    fn update(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let lr = self.learning_rate;
        let AdamParams {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.params;
        let t = self.step as i32;
        // Bias corrections folded into the step size and ε, as in the paper's efficient form.
        let step_size = lr * (1.0 - beta2.powi(t)).sqrt() / (1.0 - beta1.powi(t));
        let eps_hat = eps * (1.0 - beta2.powi(t)).sqrt();
        let decay = 1.0 - lr * weight_decay;
        for slot in self.slots.values_mut() {
            let Some(g) = grads.get(slot.var.as_tensor()) else {
                continue;
            };
            match &mut slot.moments {
                Moments::Host(m, v) if on_host(g) => {
                    // Autograd may hand a transposed view; the update reads rows in order.
                    let g = g.contiguous()?;
                    let update = HostAdamUpdate {
                        m: std::cell::RefCell::new(m),
                        v: std::cell::RefCell::new(v),
                        beta1: beta1 as f32,
                        beta2: beta2 as f32,
                        step_size: step_size as f32,
                        eps_hat: eps_hat as f32,
                        decay: decay as f32,
                    };
                    slot.var.as_tensor().inplace_op2(&g, &update)?;
                }
                Moments::Host(..) => {
                    candle_core::bail!("host Adam update from a gradient not in CPU f32")
                }
                Moments::Device(m, v) => {
                    *m = ((&*m * beta1)? + (g * (1.0 - beta1))?)?;
                    *v = ((&*v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
                    let w = (slot.var.as_tensor() * decay)?;
                    let update = (&*m / (v.sqrt()? + eps_hat)?)?;
                    slot.var.set(&(w - (update * step_size)?)?)?;
                }
            }
        }
        Ok(())
    }

    /// The moments as named tensors (`<var>.m`, `<var>.v`), for saving.
    pub fn state_tensors(&self) -> Result<BTreeMap<String, Tensor>> {
        let mut out = BTreeMap::new();
        for (name, s) in &self.slots {
            let (m, v) = match &s.moments {
                Moments::Host(m, v) => {
                    let shape = s.var.as_tensor().dims();
                    (
                        Tensor::from_slice(m, shape, &Device::Cpu)?,
                        Tensor::from_slice(v, shape, &Device::Cpu)?,
                    )
                }
                Moments::Device(m, v) => (m.clone(), v.clone()),
            };
            out.insert(format!("{name}.m"), m);
            out.insert(format!("{name}.v"), v);
        }
        Ok(out)
    }

    /// Restores moments saved by [`Adam::state_tensors`] and the step count.
    pub fn restore(&mut self, tensors: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for (name, s) in &mut self.slots {
            let target = s.var.as_tensor();
            let get = |suffix: &str| -> Result<Tensor> {
                let key = format!("{name}.{suffix}");
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
                t.to_dtype(target.dtype())?.to_device(target.device())
            };
            let (m, v) = (get("m")?, get("v")?);
            s.moments = match s.moments {
                Moments::Host(..) => {
                    Moments::Host(m.flatten_all()?.to_vec1()?, v.flatten_all()?.to_vec1()?)
                }
                Moments::Device(..) => Moments::Device(m, v),
            };
        }
        self.step = step;
        Ok(())
    }
}

impl Optimizer for Adam {
    type Config = AdamConfig;

    /// Adam over `vars`, named by their place in the list (`0`, `1`, ...) for saved state; use
    /// [`Adam::named`] to save it under the model's parameter names.
    fn new(vars: Vec<Var>, config: AdamConfig) -> Result<Self> {
        let named = vars
            .into_iter()
            .enumerate()
            .map(|(i, var)| (i.to_string(), var))
            .collect();
        Self::named(named, config)
    }

    fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.update(grads)
    }

    fn learning_rate(&self) -> f64 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, lr: f64) {
        self.learning_rate = lr;
    }
}

/// One Adam update of a CPU `f32` variable from its CPU `f32` gradient, written into the
/// variable's storage in place (no copy of the weights out and back) in one multi-threaded pass.
struct HostAdamUpdate<'a> {
    m: std::cell::RefCell<&'a mut Vec<f32>>,
    v: std::cell::RefCell<&'a mut Vec<f32>>,
    beta1: f32,
    beta2: f32,
    step_size: f32,
    eps_hat: f32,
    decay: f32,
}

impl candle_core::InplaceOp2 for HostAdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "host-adam-update"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
        grad: &candle_core::CpuStorage,
        grad_layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let (candle_core::CpuStorage::F32(data), candle_core::CpuStorage::F32(grad)) =
            (storage, grad)
        else {
            candle_core::bail!("host Adam update of a non-f32 variable or gradient");
        };
        let (Some((start, end)), Some((g_start, g_end))) = (
            layout.contiguous_offsets(),
            grad_layout.contiguous_offsets(),
        ) else {
            candle_core::bail!("host Adam update of a non-contiguous variable or gradient");
        };
        let w = &mut data[start..end];
        let g = &grad[g_start..g_end];
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if w.len() != g.len() || m.len() != w.len() || v.len() != w.len() {
            candle_core::bail!(
                "host Adam update: {} weights, {} gradients, {}/{} moments",
                w.len(),
                g.len(),
                m.len(),
                v.len()
            );
        }
        let (b1, b2, ss, eh, dc) = (
            self.beta1,
            self.beta2,
            self.step_size,
            self.eps_hat,
            self.decay,
        );
        w.par_iter_mut()
            .zip(m.par_iter_mut().zip(v.par_iter_mut()))
            .zip(g.par_iter())
            .for_each(|((w, (m, v)), g)| {
                *m = b1 * *m + (1.0 - b1) * g;
                *v = b2 * *v + (1.0 - b2) * g * g;
                *w = *w * dc - ss * *m / (v.sqrt() + eh);
            });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Textbook Adam (bias-corrected moments) in f64, one coordinate.
    fn reference(grads: &[f64], w0: f64, lr: f64, p: AdamParams) -> f64 {
        let (mut w, mut m, mut v) = (w0, 0.0, 0.0);
        for (t, g) in grads.iter().enumerate() {
            let t = (t + 1) as i32;
            w *= 1.0 - lr * p.weight_decay;
            m = p.beta1 * m + (1.0 - p.beta1) * g;
            v = p.beta2 * v + (1.0 - p.beta2) * g * g;
            let (m_hat, v_hat) = (m / (1.0 - p.beta1.powi(t)), v / (1.0 - p.beta2.powi(t)));
            w -= lr * m_hat / (v_hat.sqrt() + p.eps);
        }
        w
    }

    #[test]
    fn settings_adam_cannot_step_with_are_refused() {
        assert!(AdamParams::default().validate().is_ok());
        let bad = [
            AdamParams {
                beta1: 1.0,
                ..AdamParams::default()
            },
            AdamParams {
                beta2: -0.1,
                ..AdamParams::default()
            },
            AdamParams {
                eps: 0.0,
                ..AdamParams::default()
            },
            AdamParams {
                weight_decay: -1e-3,
                ..AdamParams::default()
            },
            AdamParams {
                weight_decay: f64::NAN,
                ..AdamParams::default()
            },
        ];
        for p in bad {
            let err = p.validate().unwrap_err().to_string();
            assert!(err.contains("Adam settings out of range"), "{p:?}: {err}");
        }
    }

    #[test]
    fn host_and_device_updates_match_textbook_adam() {
        let w0 = [0.5f64, -1.0, 2.0, 0.0];
        let grads: Vec<[f64; 4]> = vec![
            [0.1, -0.2, 3.0, 1e-4],
            [0.3, 0.1, -2.0, -1e-4],
            [-0.5, 0.0, 1.0, 2e-4],
        ];
        for weight_decay in [0.0, 0.01] {
            let p = AdamParams {
                weight_decay,
                ..AdamParams::default()
            };
            let lr = 5e-3;
            // f32 on the CPU takes the in-place host path, f64 the tensor path.
            let host = Var::from_tensor(
                &Tensor::new(&w0, &Device::Cpu)
                    .unwrap()
                    .to_dtype(DType::F32)
                    .unwrap(),
            )
            .unwrap();
            let dev = Var::from_tensor(&Tensor::new(&w0, &Device::Cpu).unwrap()).unwrap();
            let vars = BTreeMap::from([
                ("h".to_string(), host.clone()),
                ("d".to_string(), dev.clone()),
            ]);
            let config = AdamConfig {
                params: p,
                learning_rate: lr,
            };
            let mut adam = Adam::named(vars, config).unwrap();
            assert!(matches!(adam.slots["h"].moments, Moments::Host(..)));
            assert!(matches!(adam.slots["d"].moments, Moments::Device(..)));
            for g in &grads {
                let g64 = Tensor::new(g, &Device::Cpu).unwrap();
                let mut grads = GradStore::default();
                grads.insert(host.as_tensor(), g64.to_dtype(DType::F32).unwrap());
                grads.insert(dev.as_tensor(), g64);
                adam.step(&grads).unwrap();
            }
            let host: Vec<f32> = host.as_tensor().to_vec1().unwrap();
            let dev: Vec<f64> = dev.as_tensor().to_vec1().unwrap();
            for i in 0..4 {
                let series: Vec<f64> = grads.iter().map(|g| g[i]).collect();
                let want = reference(&series, w0[i], lr, p);
                assert!(
                    (dev[i] - want).abs() < 1e-12,
                    "f64 [{i}]: {} vs {want}",
                    dev[i]
                );
                assert!(
                    (host[i] as f64 - want).abs() < 1e-6,
                    "f32 [{i}]: {} vs {want}",
                    host[i]
                );
            }
        }
    }
}
