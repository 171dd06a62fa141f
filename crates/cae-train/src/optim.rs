//! Adam (Kingma & Ba 2015) with decoupled weight decay, whose state can be saved and restored so a
//! resumed run continues exactly where it stopped.
use std::collections::{BTreeMap, HashMap};

use candle_core::{DType, Device, Result, Tensor, Var};
use rayon::prelude::*;
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

/// Adam over a named set of variables.
#[derive(Debug)]
pub struct Adam {
    params: AdamParams,
    slots: BTreeMap<String, Slot>,
    step: u64,
}

fn on_host(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == DType::F32
}

impl Adam {
    pub fn new(vars: BTreeMap<String, Var>, params: AdamParams) -> Result<Self> {
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
            params,
            slots,
            step: 0,
        })
    }

    /// Number of updates applied so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One update with learning rate `lr` from gradients by variable name (variables without one are left alone).
    pub fn step(&mut self, grads: &HashMap<String, Tensor>, lr: f64) -> Result<()> {
        self.step += 1;
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
        for (name, slot) in &mut self.slots {
            let Some(g) = grads.get(name) else {
                continue;
            };
            match &mut slot.moments {
                Moments::Host(m, v) => {
                    let shape = slot.var.as_tensor().dims().to_vec();
                    let mut w = slot.var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
                    let g = g.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
                    let (b1, b2, ss, eh, dc) = (
                        beta1 as f32,
                        beta2 as f32,
                        step_size as f32,
                        eps_hat as f32,
                        decay as f32,
                    );
                    w.par_iter_mut()
                        .zip(m.par_iter_mut().zip(v.par_iter_mut()))
                        .zip(g.par_iter())
                        .for_each(|((w, (m, v)), g)| {
                            *m = b1 * *m + (1.0 - b1) * g;
                            *v = b2 * *v + (1.0 - b2) * g * g;
                            *w = *w * dc - ss * *m / (v.sqrt() + eh);
                        });
                    slot.var.set(&Tensor::from_vec(w, shape, &Device::Cpu)?)?;
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
