//! The fast CPU kernels (conv custom ops, the deep encoder's Gram penalty) inside whole models:
//! every parameter gradient of the full loss against candle's own ops (`Kernels::CandleOnly`) on
//! the presets' real architectures, and against central finite differences in f64.
mod common;

use cae_core::{Activation, CaeConfig, ContractiveAutoencoder, Kernels, PenaltyMethod};
use candle_core::{DType, Device, Tensor};
use common::*;

fn model_pair(
    config: &CaeConfig,
    dtype: DType,
) -> (ContractiveAutoencoder, ContractiveAutoencoder) {
    let make = || {
        ContractiveAutoencoder::init(config, 17, dtype, &Device::Cpu)
            .unwrap()
            .0
    };
    (make(), make().with_kernels(Kernels::CandleOnly))
}

fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
    let flat = |t: &Tensor| -> Vec<f64> {
        t.to_dtype(DType::F64)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (a, b) = (flat(a), flat(b));
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-30);
    a.iter()
        .zip(&b)
        .fold(0f64, |m, (x, y)| m.max((x - y).abs()))
        / scale
}

/// One training step's loss and every gradient, fast kernels against candle's ops.
fn assert_step_matches_candle(preset: &str, dtype: DType, tol: f64) {
    let config = CaeConfig::preset(preset).unwrap();
    assert_config_step_matches_candle(&config, preset, dtype, tol);
}

fn assert_config_step_matches_candle(config: &CaeConfig, preset: &str, dtype: DType, tol: f64) {
    let (fast, reference) = model_pair(config, dtype);
    let x = inputs(5, config.input_dim(), 3).to_dtype(dtype).unwrap();
    fast.set_probe_seed(7);
    reference.set_probe_seed(7);
    let a = fast.loss_and_gradients(&x, 1e-2).unwrap();
    let b = reference.loss_and_gradients(&x, 1e-2).unwrap();
    let what = format!("{preset} {dtype:?}");
    for (name, (u, v)) in [
        ("reconstruction", (a.reconstruction, b.reconstruction)),
        ("‖J‖²", (a.jacobian_sq_norm, b.jacobian_sq_norm)),
    ] {
        assert!((u - v).abs() <= tol * v.abs(), "{what}: {name} {u} vs {v}");
    }
    assert_eq!(a.gradients.len(), b.gradients.len());
    for (name, g) in b.gradients.iter() {
        let err = max_rel_diff(a.gradients.by_name(name).unwrap(), g);
        assert!(err <= tol, "{what}: gradient of {name}: rel err {err:e}");
    }
}

#[test]
fn conv_preset_step_matches_candle_ops() {
    assert_step_matches_candle("conv", DType::F64, 1e-10);
    assert_step_matches_candle("conv", DType::F32, 1e-4);
}

#[test]
fn deep_preset_step_matches_candle_ops() {
    assert_step_matches_candle("deep", DType::F64, 1e-10);
    assert_step_matches_candle("deep", DType::F32, 1e-4);
}

/// The deep preset's penalty (rows, then the Gram matrix of the first layer) against the square
/// of the full Jacobian built by candle's ops, an independent route.
#[test]
fn deep_preset_penalty_equals_the_full_jacobians_norm() {
    let config = CaeConfig::preset("deep").unwrap();
    let (model, _) = ContractiveAutoencoder::init(&config, 4, DType::F64, &Device::Cpu).unwrap();
    let x = inputs(4, config.input_dim(), 8);
    let penalty = model.jacobian_sq_norm(&x).unwrap();
    let full = model
        .jacobian(&x)
        .unwrap()
        .sqr()
        .unwrap()
        .sum((1, 2))
        .unwrap();
    let err = max_rel_diff(&penalty, &full);
    assert!(err < 1e-12, "rel err {err:e}");
}

const FD_TOL: f64 = 1e-4;

/// The whole loss (BCE + λ·penalty) of a small conv net with the preset's shape of layers (ReLU,
/// strides 1 and 2, an edge pixel dropped by a stride), Hutchinson probes fixed by the seed.
#[test]
fn conv_loss_gradients_match_finite_differences() {
    for penalty in [
        PenaltyMethod::Hutchinson { probes: 3 },
        PenaltyMethod::Exact,
    ] {
        let mut config = tiny_conv_config(Activation::Relu, penalty);
        config.height = 9; // (9 - 3) + 1 = 7, then k2 s2 drops the last row and column
        config.width = 9;
        if let cae_core::Architecture::Conv(c) = &mut config.architecture {
            c.decoder[0].kernel = 3; // 3x3 code → (3 - 1)·2 + 3 = 7 → 7 + 3 - 1 = 9
        }
        let (model, varmap) = f64_model(&config, 21);
        assert_eq!(model.kernels(), Kernels::Fast);
        let x = inputs(3, 81, 2);
        check_param_gradients(
            &varmap,
            || {
                model.set_probe_seed(5);
                model.loss(&x, 0.3).unwrap().total
            },
            1e-6,
            FD_TOL,
            &format!("conv loss, {penalty:?}"),
        );
    }
}

/// The whole loss of a deep MLP shaped like the preset (softplus hidden, sigmoid code, first
/// layer and code narrower than the input, so the Gram route is taken).
#[test]
fn deep_loss_gradients_match_finite_differences() {
    let mut config = mlp_config(&[8, 6], 4, Activation::Softplus, false);
    if let cae_core::Architecture::Mlp(m) = &mut config.architecture {
        m.code_activation = Activation::Sigmoid;
    }
    let (model, varmap) = f64_model(&config, 13);
    let x = inputs(4, H * W, 6);
    check_param_gradients(
        &varmap,
        || model.loss(&x, 0.3).unwrap().total,
        1e-6,
        FD_TOL,
        "deep loss",
    );
}

/// An MLP encoder four layers deep at odd widths (12-9-7-5-3, softplus hidden, sigmoid code):
/// the rows pass through two middle layers' scaled products before the Gram penalty. Its whole
/// loss against finite differences in f64, and its step against candle's ops in f64 and f32.
fn four_layer_config() -> CaeConfig {
    let mut config = mlp_config(&[9, 7, 5], 3, Activation::Softplus, false);
    if let cae_core::Architecture::Mlp(m) = &mut config.architecture {
        m.code_activation = Activation::Sigmoid;
    }
    config
}

#[test]
fn four_layer_loss_gradients_match_finite_differences() {
    let (model, varmap) = f64_model(&four_layer_config(), 29);
    assert_eq!(model.kernels(), Kernels::Fast);
    let x = inputs(5, H * W, 11);
    check_param_gradients(
        &varmap,
        || model.loss(&x, 0.3).unwrap().total,
        1e-6,
        FD_TOL,
        "four-layer loss",
    );
}

#[test]
fn four_layer_step_matches_candle_ops() {
    let config = four_layer_config();
    assert_config_step_matches_candle(&config, "12-9-7-5-3", DType::F64, 1e-10);
    assert_config_step_matches_candle(&config, "12-9-7-5-3", DType::F32, 1e-4);
}
