//! The Jacobian penalty against independent computations: finite differences of the encoder for the value,
//! finite differences of the penalty for its gradients with respect to every parameter (f64).
mod common;

use cae_core::{Activation, PenaltyMethod};
use common::*;

const TOL: f64 = 1e-4;

fn sq_norms_fd(jac: &[Vec<Vec<f64>>]) -> Vec<f64> {
    jac.iter()
        .map(|s| s.iter().flatten().map(|v| v * v).sum())
        .collect()
}

fn check_mlp(hidden: &[usize], code: usize, act: Activation, tied: bool) {
    let what = format!("mlp hidden {hidden:?} code {code} {act} tied={tied}");
    let config = mlp_config(hidden, code, act, tied);
    let (model, varmap) = f64_model(&config, 7);
    let x = inputs(5, H * W, 3);

    let exact: Vec<f64> = model.jacobian_sq_norm(&x).unwrap().to_vec1().unwrap();
    let fd = sq_norms_fd(&jacobian_fd(&model, &x, 1e-6));
    let err = rel_err(&exact, &fd);
    assert!(
        err <= TOL,
        "{what}: ‖J‖² {exact:?} vs finite differences {fd:?} (rel err {err:e})"
    );

    check_param_gradients(
        &varmap,
        || model.jacobian_sq_norm(&x).unwrap().mean(0).unwrap(),
        1e-6,
        TOL,
        &what,
    );
}

#[test]
fn one_layer_closed_form_matches_finite_differences_for_every_activation() {
    for act in Activation::ALL {
        check_mlp(&[], 6, act, false);
        check_mlp(&[], 6, act, true);
    }
}

#[test]
fn two_layer_penalty_matches_finite_differences_for_every_activation() {
    for act in Activation::ALL {
        check_mlp(&[7], 5, act, false); // code narrower than input: tangents from the code side
        check_mlp(&[9], 15, act, false); // code wider than input: tangents from the input side
    }
}

#[test]
fn three_layer_penalty_matches_finite_differences_for_every_activation() {
    for act in Activation::ALL {
        check_mlp(&[8, 6], 4, act, true);
        check_mlp(&[10, 16], 14, act, false);
    }
}

#[test]
fn jacobian_matches_finite_differences() {
    for (hidden, code) in [(vec![], 6), (vec![7], 5), (vec![9, 5], 15)] {
        let config = mlp_config(&hidden, code, Activation::Tanh, false);
        let (model, _) = f64_model(&config, 11);
        let x = inputs(3, H * W, 5);
        let exact: Vec<Vec<Vec<f64>>> = model.jacobian(&x).unwrap().to_vec3().unwrap();
        let fd = jacobian_fd(&model, &x, 1e-6);
        let flat =
            |j: &Vec<Vec<Vec<f64>>>| j.iter().flatten().flatten().copied().collect::<Vec<f64>>();
        let err = rel_err(&flat(&exact), &flat(&fd));
        assert!(err <= TOL, "hidden {hidden:?}: jacobian rel err {err:e}");
    }
}

#[test]
fn conv_exact_penalty_and_gradients_match_finite_differences() {
    for act in [Activation::Tanh, Activation::Softplus, Activation::Relu] {
        let config = tiny_conv_config(act, PenaltyMethod::Exact);
        let (model, varmap) = f64_model(&config, 5);
        let x = inputs(2, 64, 9);
        let exact: Vec<f64> = model.jacobian_sq_norm(&x).unwrap().to_vec1().unwrap();
        let fd = sq_norms_fd(&jacobian_fd(&model, &x, 1e-6));
        let err = rel_err(&exact, &fd);
        assert!(err <= TOL, "conv {act}: ‖J‖² {exact:?} vs {fd:?}");
        check_param_gradients(
            &varmap,
            || model.jacobian_sq_norm(&x).unwrap().mean(0).unwrap(),
            1e-6,
            TOL,
            &format!("conv {act}"),
        );
    }
}

#[test]
fn hutchinson_estimate_is_unbiased_on_a_small_conv_net() {
    let exact_cfg = tiny_conv_config(Activation::Tanh, PenaltyMethod::Exact);
    let (exact_model, _) = f64_model(&exact_cfg, 5);
    let x = inputs(3, 64, 9);
    let exact: f64 = exact_model
        .jacobian_sq_norm(&x)
        .unwrap()
        .mean(0)
        .unwrap()
        .to_scalar()
        .unwrap();

    let est_cfg = tiny_conv_config(Activation::Tanh, PenaltyMethod::Hutchinson { probes: 2 });
    let (est_model, _) = f64_model(&est_cfg, 5);
    est_model.set_probe_seed(1234);
    let samples: Vec<f64> = (0..400)
        .map(|_| {
            est_model
                .jacobian_sq_norm(&x)
                .unwrap()
                .mean(0)
                .unwrap()
                .to_scalar()
                .unwrap()
        })
        .collect();
    let n = samples.len() as f64;
    let mean = samples.iter().sum::<f64>() / n;
    let var = samples.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let se = (var / n).sqrt();
    assert!(
        se > 0.0,
        "the estimates do not vary: the probes are not random"
    );
    assert!(
        (mean - exact).abs() <= 3.0 * se,
        "Hutchinson mean {mean} is {} standard errors from the exact {exact}",
        (mean - exact).abs() / se
    );
}

#[test]
fn hutchinson_penalty_gradient_matches_finite_differences_for_fixed_probes() {
    // With the probe generator reset before every evaluation the estimate is a smooth function of the weights.
    let config = tiny_conv_config(Activation::Tanh, PenaltyMethod::Hutchinson { probes: 3 });
    let (model, varmap) = f64_model(&config, 3);
    let x = inputs(2, 64, 4);
    check_param_gradients(
        &varmap,
        || {
            model.set_probe_seed(99);
            model.jacobian_sq_norm(&x).unwrap().mean(0).unwrap()
        },
        1e-6,
        TOL,
        "conv hutchinson",
    );
}

#[test]
fn loss_combines_bce_and_lambda_times_penalty() {
    let config = mlp_config(&[], 6, Activation::Sigmoid, false);
    let (model, _) = f64_model(&config, 1);
    let x = inputs(4, H * W, 2);
    let loss = model.loss(&x, 0.25).unwrap();
    let bce: f64 = loss.reconstruction.to_scalar().unwrap();
    let pen: f64 = loss.penalty.to_scalar().unwrap();
    let sq: f64 = loss.jacobian_sq_norm.to_scalar().unwrap();
    let total: f64 = loss.total.to_scalar().unwrap();
    assert!((pen - 0.25 * sq).abs() < 1e-12);
    assert!((total - bce - pen).abs() < 1e-12);
    // BCE against a direct computation from the reconstruction.
    let xr: Vec<Vec<f64>> = model.reconstruct(&x).unwrap().to_vec2().unwrap();
    let xv: Vec<Vec<f64>> = x.to_vec2().unwrap();
    let mut direct = 0.0;
    for (r, t) in xr.iter().flatten().zip(xv.iter().flatten()) {
        direct -= t * r.ln() + (1.0 - t) * (1.0 - r).ln();
    }
    direct /= (4 * H * W) as f64;
    assert!((bce - direct).abs() < 1e-10, "bce {bce} vs direct {direct}");
}
