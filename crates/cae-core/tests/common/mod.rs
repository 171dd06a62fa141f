#![allow(dead_code)]
// Finite differences index [sample][code][input] explicitly: clearer than iterator chains.
#![allow(clippy::needless_range_loop)]
use cae_core::{
    Activation, Architecture, CaeConfig, ContractiveAutoencoder, ConvConfig, ConvLayer, MlpConfig,
    PenaltyMethod,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;

pub const H: usize = 3;
pub const W: usize = 4;

pub fn mlp_config(hidden: &[usize], code_dim: usize, act: Activation, tied: bool) -> CaeConfig {
    CaeConfig {
        height: H,
        width: W,
        architecture: Architecture::Mlp(MlpConfig {
            hidden: hidden.to_vec(),
            code_dim,
            hidden_activation: act,
            code_activation: act,
            tied_weights: tied,
        }),
        penalty: PenaltyMethod::Exact,
        init: cae_core::WeightInit::Pytorch,
        loss: cae_core::ReconstructionLoss::Bce,
        standardisation: None,
    }
}

/// A small conv net on 8×8 inputs: 1→3 k3, 3→2 k2 s2 (code 2×3×3); ConvT 2→3 k2 s2, 3→1 k3.
pub fn tiny_conv_config(act: Activation, penalty: PenaltyMethod) -> CaeConfig {
    let l = |out_channels, kernel, stride| ConvLayer {
        out_channels,
        kernel,
        stride,
    };
    CaeConfig {
        height: 8,
        width: 8,
        architecture: Architecture::Conv(ConvConfig {
            encoder: vec![l(3, 3, 1), l(2, 2, 2)],
            decoder: vec![l(3, 2, 2), l(1, 3, 1)],
            activation: act,
        }),
        penalty,
        init: cae_core::WeightInit::Pytorch,
        loss: cae_core::ReconstructionLoss::Bce,
        standardisation: None,
    }
}

pub fn f64_model(config: &CaeConfig, seed: u64) -> (ContractiveAutoencoder, VarMap) {
    ContractiveAutoencoder::init(config, seed, DType::F64, &Device::Cpu).unwrap()
}

/// Inputs in (0.05, 0.95), deterministic.
pub fn inputs(batch: usize, dim: usize, seed: u64) -> Tensor {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let v: Vec<f64> = (0..batch * dim)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            0.05 + 0.9 * ((s >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect();
    Tensor::from_vec(v, (batch, dim), &Device::Cpu).unwrap()
}

/// Per-sample Jacobian of the encoder by central finite differences, `[B][code][input]`.
pub fn jacobian_fd(model: &ContractiveAutoencoder, x: &Tensor, eps: f64) -> Vec<Vec<Vec<f64>>> {
    let (b, d) = x.dims2().unwrap();
    let xv: Vec<Vec<f64>> = x.to_vec2().unwrap();
    let c = model.code_dim();
    let mut jac = vec![vec![vec![0.0; d]; c]; b];
    for i in 0..d {
        let shifted = |sign: f64| {
            let rows: Vec<f64> = xv
                .iter()
                .flat_map(|r| {
                    r.iter()
                        .enumerate()
                        .map(|(k, v)| if k == i { v + sign * eps } else { *v })
                        .collect::<Vec<_>>()
                })
                .collect();
            let xs = Tensor::from_vec(rows, (b, d), &Device::Cpu).unwrap();
            model.encode(&xs).unwrap().to_vec2::<f64>().unwrap()
        };
        let (plus, minus) = (shifted(1.0), shifted(-1.0));
        for s in 0..b {
            for j in 0..c {
                jac[s][j][i] = (plus[s][j] - minus[s][j]) / (2.0 * eps);
            }
        }
    }
    jac
}

pub fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    let diff: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let scale: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-12);
    diff / scale
}

/// Checks d(value)/d(every parameter) from `backward()` against central finite differences.
pub fn check_param_gradients(
    varmap: &VarMap,
    value: impl Fn() -> Tensor,
    eps: f64,
    tol: f64,
    what: &str,
) {
    let grads = value().backward().unwrap();
    let vars = varmap.data().lock().unwrap().clone();
    let mut names: Vec<_> = vars.keys().cloned().collect();
    names.sort();
    for name in names {
        let var = &vars[&name];
        let original = var.as_tensor().copy().unwrap();
        let shape = original.dims().to_vec();
        let flat: Vec<f64> = original.flatten_all().unwrap().to_vec1().unwrap();
        let analytic: Vec<f64> = match grads.get(var.as_tensor()) {
            Some(g) => g.flatten_all().unwrap().to_vec1().unwrap(),
            None => vec![0.0; flat.len()],
        };
        let mut numeric = vec![0.0; flat.len()];
        for k in 0..flat.len() {
            let eval = |delta: f64| {
                let mut p = flat.clone();
                p[k] += delta;
                var.set(&Tensor::from_vec(p, shape.as_slice(), &Device::Cpu).unwrap())
                    .unwrap();
                value().to_scalar::<f64>().unwrap()
            };
            numeric[k] = (eval(eps) - eval(-eps)) / (2.0 * eps);
        }
        var.set(&original).unwrap();
        let err = rel_err(&analytic, &numeric);
        assert!(
            err <= tol,
            "{what}: gradient of `{name}` differs from finite differences: relative error {err:e} > {tol:e}\nanalytic {analytic:?}\nnumeric  {numeric:?}"
        );
    }
}

/// Asserts that a step's gradients (`step`, e.g. from `loss_and_gradients`) equal candle
/// autograd's (`grads`, from `backward()` of the same objective) for every variable of `varmap`,
/// within relative error `tol`.
pub fn assert_step_gradients(
    step: &cae_core::Gradients,
    grads: &candle_core::backprop::GradStore,
    varmap: &VarMap,
    tol: f64,
    what: &str,
) {
    let host = |t: &Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_vec1().unwrap() };
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let a = host(step.get(var.as_tensor()).unwrap());
        let b = host(grads.get(var.as_tensor()).unwrap());
        assert!(
            rel_err(&a, &b) < tol,
            "{what}: step gradient of {name} differs"
        );
    }
}
