//! CAE+H (Rifai et al., ECML 2011): `‖J(x) − J(x + ε)‖²_F` against the Jacobians by central finite
//! differences, and its gradients (and the whole CAE+H objective's) against finite differences of
//! the value, in f64.
mod common;

use cae_core::{Activation, HessianPenalty};
use candle_core::{Device, Tensor};
use common::*;

const TOL: f64 = 1e-4;

/// Two corrupted copies of each of 4 inputs, σ ≈ 0.3, deterministic.
fn noise(batch: usize, dim: usize) -> Tensor {
    let u = inputs(2 * batch, dim, 11); // in (0.05, 0.95)
    ((u - 0.5).unwrap() * 0.6)
        .unwrap()
        .reshape((2, batch, dim))
        .unwrap()
}

fn change_fd(model: &cae_core::ContractiveAutoencoder, x: &Tensor, noise: &Tensor) -> Vec<f64> {
    let clean = jacobian_fd(model, x, 1e-6);
    let copies = noise.dim(0).unwrap();
    let mut out = vec![0.0; clean.len()];
    for c in 0..copies {
        let corrupted = (x + noise.get(c).unwrap()).unwrap();
        let shifted = jacobian_fd(model, &corrupted, 1e-6);
        for (s, o) in out.iter_mut().enumerate() {
            let d: f64 = clean[s]
                .iter()
                .flatten()
                .zip(shifted[s].iter().flatten())
                .map(|(a, b)| (a - b).powi(2))
                .sum();
            *o += d / copies as f64;
        }
    }
    out
}

fn check(hidden: &[usize], code: usize, act: Activation, tied: bool) {
    let what = format!("CAE+H, hidden {hidden:?} code {code} {act} tied={tied}");
    let config = mlp_config(hidden, code, act, tied);
    let (model, varmap) = f64_model(&config, 5);
    let x = inputs(4, H * W, 2);
    let eps = noise(4, H * W);
    let exact: Vec<f64> = model
        .jacobian_change_sq_norm(&x, &eps)
        .unwrap()
        .to_vec1()
        .unwrap();
    let fd = change_fd(&model, &x, &eps);
    let err = rel_err(&exact, &fd);
    assert!(
        err <= TOL,
        "{what}: {exact:?} vs finite differences {fd:?} (rel err {err:e})"
    );
    assert!(
        fd.iter().all(|v| *v > 1e-8),
        "{what}: the test needs a change: {fd:?}"
    );
    check_param_gradients(
        &varmap,
        || {
            model
                .jacobian_change_sq_norm(&x, &eps)
                .unwrap()
                .mean(0)
                .unwrap()
        },
        1e-6,
        TOL,
        &what,
    );
}

#[test]
fn one_layer_closed_form_and_gradients_match_finite_differences() {
    for act in [Activation::Sigmoid, Activation::Tanh, Activation::Softplus] {
        check(&[], 6, act, false);
        check(&[], 6, act, true);
    }
}

#[test]
fn deeper_encoders_match_finite_differences() {
    check(&[7], 5, Activation::Sigmoid, false);
    check(&[5], 14, Activation::Tanh, true);
}

/// The whole objective BCE + λ‖J‖² + γ‖J(x) − J(x+ε)‖² with the model's own Gaussian draws (the
/// same draws for every evaluation: the generator is reseeded), and `hessian_step`'s gradients.
#[test]
fn cae_h_objective_and_step_match_finite_differences() {
    let config = mlp_config(&[], 6, Activation::Sigmoid, false);
    let (model, varmap) = f64_model(&config, 9);
    let x = inputs(5, H * W, 4);
    let h = HessianPenalty {
        gamma: 0.7,
        sigma: 0.2,
        copies: 3,
    };
    let lambda = 0.3;
    let objective = || {
        model.set_probe_seed(17);
        model.loss_with_hessian(&x, lambda, &h).unwrap().total
    };
    check_param_gradients(&varmap, objective, 1e-6, TOL, "CAE+H objective");

    // Its parts: the penalty is λ‖J‖² plus γ times the change for the same draws.
    model.set_probe_seed(17);
    let loss = model.loss_with_hessian(&x, lambda, &h).unwrap();
    model.set_probe_seed(17);
    let eps = model.gaussian_noise(3, 0.2, &x).unwrap();
    let sigma = eps.sqr().unwrap().mean_all().unwrap().sqrt().unwrap();
    let sigma = sigma.to_scalar::<f64>().unwrap();
    assert!((sigma - 0.2).abs() < 0.02, "noise std {sigma}");
    let change = model.jacobian_change_sq_norm(&x, &eps).unwrap();
    let change = change.mean(0).unwrap().to_scalar::<f64>().unwrap();
    let sq = loss.jacobian_sq_norm.to_scalar::<f64>().unwrap();
    let penalty = loss.penalty.to_scalar::<f64>().unwrap();
    assert!(
        (penalty - (lambda * sq + 0.7 * change)).abs() < 1e-12 * penalty.abs().max(1.0),
        "penalty {penalty} vs {lambda}·{sq} + 0.7·{change}"
    );

    // The step's gradients are the objective's.
    model.set_probe_seed(17);
    let step = model.hessian_step(&x, lambda, &h).unwrap();
    let grads = objective().backward().unwrap();
    assert_step_gradients(&step.gradients, &grads, &varmap, 1e-10, "CAE+H");
    assert!((step.total - loss.total.to_scalar::<f64>().unwrap()).abs() < 1e-12);
}

#[test]
fn bad_settings_are_rejected() {
    let bad = [
        HessianPenalty {
            gamma: -1.0,
            sigma: 0.1,
            copies: 1,
        },
        HessianPenalty {
            gamma: 1.0,
            sigma: 0.0,
            copies: 1,
        },
        HessianPenalty {
            gamma: 1.0,
            sigma: 0.1,
            copies: 0,
        },
    ];
    for h in bad {
        assert!(h.validate().is_err(), "{h:?} accepted");
    }
    let conv = tiny_conv_config(Activation::Relu, cae_core::PenaltyMethod::Exact);
    let (model, _) = f64_model(&conv, 1);
    let x = Tensor::zeros((1, 64), candle_core::DType::F64, &Device::Cpu).unwrap();
    let eps = Tensor::zeros((1, 1, 64), candle_core::DType::F64, &Device::Cpu).unwrap();
    let err = model
        .jacobian_change_sq_norm(&x, &eps)
        .unwrap_err()
        .to_string();
    assert!(err.contains("MLP"), "{err}");
}
