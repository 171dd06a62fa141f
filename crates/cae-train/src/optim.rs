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
                    let g = cae_core::HostF32::new(g)?;
                    let update = HostAdamUpdate {
                        m: std::cell::RefCell::new(m),
                        v: std::cell::RefCell::new(v),
                        g: g.as_slice(),
                        beta1: beta1 as f32,
                        beta2: beta2 as f32,
                        step_size: step_size as f32,
                        eps_hat: eps_hat as f32,
                        decay: decay as f32,
                    };
                    slot.var.as_tensor().inplace_op1(&update)?;
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

/// One Adam update of a CPU `f32` variable, written into the variable's storage in place (no copy
/// of the weights out and back) in one multi-threaded pass.
struct HostAdamUpdate<'a> {
    m: std::cell::RefCell<&'a mut Vec<f32>>,
    v: std::cell::RefCell<&'a mut Vec<f32>>,
    g: &'a [f32],
    beta1: f32,
    beta2: f32,
    step_size: f32,
    eps_hat: f32,
    decay: f32,
}

impl candle_core::InplaceOp1 for HostAdamUpdate<'_> {
    fn name(&self) -> &'static str {
        "host-adam-update"
    }

    fn cpu_fwd(
        &self,
        storage: &mut candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<()> {
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("host Adam update of a non-f32 variable");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("host Adam update of a non-contiguous variable");
        };
        let w = &mut data[start..end];
        let (mut m, mut v) = (self.m.borrow_mut(), self.v.borrow_mut());
        if w.len() != self.g.len() || m.len() != w.len() || v.len() != w.len() {
            candle_core::bail!(
                "host Adam update: {} weights, {} gradients, {}/{} moments",
                w.len(),
                self.g.len(),
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
            .zip(self.g.par_iter())
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
            let mut adam = Adam::new(vars, p).unwrap();
            assert!(matches!(adam.slots["h"].moments, Moments::Host(..)));
            assert!(matches!(adam.slots["d"].moments, Moments::Device(..)));
            for g in &grads {
                let g64 = Tensor::new(g, &Device::Cpu).unwrap();
                let grads = HashMap::from([
                    ("h".to_string(), g64.to_dtype(DType::F32).unwrap()),
                    ("d".to_string(), g64),
                ]);
                adam.step(&grads, lr).unwrap();
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
