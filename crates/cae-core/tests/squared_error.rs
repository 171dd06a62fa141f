//! The squared-error loss (linear outputs) and the stored input standardisation: the objective's
//! value against a direct computation, its gradients against central finite differences in f64
//! for one-layer, deep and conv encoders, the training step against the objective, and the
//! standardisation through a model file.
mod common;

use cae_core::{
    Activation, CaeConfig, ContractiveAutoencoder, PenaltyMethod, ReconstructionLoss,
    Standardisation,
};
use candle_core::{DType, Device, Tensor};
use common::*;

const TOL: f64 = 1e-6;

fn mse(mut config: CaeConfig) -> CaeConfig {
    config.loss = ReconstructionLoss::Mse;
    config
}

/// Real values well outside [0, 1], as standardised data has.
fn real_inputs(batch: usize, dim: usize, seed: u64) -> Tensor {
    ((inputs(batch, dim, seed) - 0.5).unwrap() * 4.0).unwrap()
}

fn check_objective(config: CaeConfig, x: &Tensor, what: &str) {
    let (model, varmap) = f64_model(&config, 3);
    let lambda = 0.2;
    let loss = model.loss(x, lambda).unwrap();

    // The reconstruction term is the mean of (f(g(x)) − x)² over every value, with f linear.
    let outputs = model.decode_logits(&model.encode(x).unwrap()).unwrap();
    let recon = model.reconstruct(x).unwrap();
    assert_eq!(
        recon.to_vec2::<f64>().unwrap(),
        outputs.to_vec2::<f64>().unwrap(),
        "{what}: MSE outputs are linear"
    );
    let direct: f64 = {
        let (o, t) = (
            outputs.to_vec2::<f64>().unwrap(),
            x.to_vec2::<f64>().unwrap(),
        );
        let n = (o.len() * o[0].len()) as f64;
        o.iter()
            .zip(&t)
            .flat_map(|(a, b)| a.iter().zip(b).map(|(p, q)| (p - q).powi(2)))
            .sum::<f64>()
            / n
    };
    let value = loss.reconstruction.to_scalar::<f64>().unwrap();
    assert!(
        (value - direct).abs() < 1e-12 * direct.max(1.0),
        "{what}: MSE {value} vs direct {direct}"
    );
    let per_sample = model.sample_reconstruction_loss(x).unwrap();
    let mean = per_sample.iter().sum::<f64>() / per_sample.len() as f64;
    assert!((mean - direct).abs() < 1e-12 * direct.max(1.0), "{what}");

    // Every parameter's gradient of the whole objective, against central differences.
    check_param_gradients(
        &varmap,
        || model.loss(x, lambda).unwrap().total,
        1e-6,
        TOL,
        what,
    );
    // The training step returns the same figures and gradients as the objective.
    let step = model.loss_and_gradients(x, lambda).unwrap();
    assert!(
        (step.reconstruction - direct).abs() < 1e-12 * direct.max(1.0),
        "{what}"
    );
    let grads = loss.total.backward().unwrap();
    assert_step_gradients(&step.gradients, &grads, &varmap, 1e-12, what);
}

#[test]
fn one_layer_mse_objective_and_gradients_match_finite_differences() {
    for (act, tied) in [(Activation::Sigmoid, false), (Activation::Softplus, true)] {
        let config = mse(mlp_config(&[], 5, act, tied));
        check_objective(
            config,
            &real_inputs(4, H * W, 1),
            &format!("one layer {act}"),
        );
    }
}

#[test]
fn deep_mse_objective_and_gradients_match_finite_differences() {
    let config = mse(mlp_config(&[6], 4, Activation::Softplus, false));
    check_objective(config, &real_inputs(3, H * W, 2), "deep");
}

#[test]
fn conv_mse_objective_and_gradients_match_finite_differences() {
    let config = mse(tiny_conv_config(Activation::Tanh, PenaltyMethod::Exact));
    check_objective(config, &real_inputs(2, 64, 3), "conv");
}

/// The fused one-layer CPU kernel computes BCE with sigmoid outputs: an f32 MSE model must not
/// take it, for the step or for inference.
#[test]
fn f32_one_layer_mse_model_reports_the_squared_error_not_the_fused_bce() {
    let config = mse(mlp_config(&[], 5, Activation::Sigmoid, false));
    let (model, _) = ContractiveAutoencoder::init(&config, 3, DType::F32, &Device::Cpu).unwrap();
    let x = real_inputs(8, H * W, 4).to_dtype(DType::F32).unwrap();
    let recon = model.reconstruct(&x).unwrap();
    let outputs = model.decode_logits(&model.encode(&x).unwrap()).unwrap();
    assert_eq!(
        recon.to_vec2::<f32>().unwrap(),
        outputs.to_vec2::<f32>().unwrap()
    );
    let direct = (&recon - &x).unwrap().sqr().unwrap().mean_all().unwrap();
    let direct = f64::from(direct.to_scalar::<f32>().unwrap());
    let step = model.loss_and_gradients(&x, 0.1).unwrap();
    assert!(
        (step.reconstruction - direct).abs() < 1e-5 * direct,
        "step {} vs direct {direct}",
        step.reconstruction
    );
}

#[test]
fn a_model_file_keeps_its_loss_and_standardisation_and_applies_it() {
    let mut config = mse(mlp_config(&[], 5, Activation::Sigmoid, false));
    let dim = H * W;
    let mean: Vec<f64> = (0..dim).map(|i| i as f64 - 3.0).collect();
    let std: Vec<f64> = (0..dim).map(|i| 0.5 + i as f64 / 4.0).collect();
    config.standardisation =
        Some(Standardisation::from_moments(mean.clone(), std.clone()).unwrap());
    let (_, varmap) = ContractiveAutoencoder::init(&config, 1, DType::F32, &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    cae_core::save_model(&path, &config, &varmap, &Default::default()).unwrap();
    let loaded = ContractiveAutoencoder::load(&path, DType::F64, &Device::Cpu).unwrap();
    assert_eq!(loaded.config(), &config);
    let x = real_inputs(2, dim, 5);
    let prepared = loaded.prepare_inputs(&x).unwrap().to_vec2::<f64>().unwrap();
    for (row, orig) in prepared.iter().zip(x.to_vec2::<f64>().unwrap()) {
        for (i, (p, o)) in row.iter().zip(orig).enumerate() {
            assert!((p - (o - mean[i]) / std[i]).abs() < 1e-12);
        }
    }
    let restored = loaded
        .restore_outputs(&loaded.prepare_inputs(&x).unwrap())
        .unwrap();
    assert!(
        rel_err(
            &restored.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            &x.flatten_all().unwrap().to_vec1::<f64>().unwrap()
        ) < 1e-12
    );
}

#[test]
fn standardisation_with_the_bce_loss_or_the_wrong_width_is_refused() {
    let mut config = mlp_config(&[], 5, Activation::Sigmoid, false);
    config.standardisation =
        Some(Standardisation::from_moments(vec![0.0; H * W], vec![1.0; H * W]).unwrap());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("binary cross-entropy"), "{err}");
    config.loss = ReconstructionLoss::Mse;
    config.validate().unwrap();
    config.standardisation =
        Some(Standardisation::from_moments(vec![0.0; 3], vec![1.0; 3]).unwrap());
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("3 means"), "{err}");
}

#[test]
fn a_bce_config_is_written_as_before_and_an_mse_config_says_so() {
    let bce = CaeConfig::preset("small").unwrap();
    let json = serde_json::to_string(&bce).unwrap();
    assert!(
        !json.contains("loss") && !json.contains("standardisation"),
        "{json}"
    );
    let mse = mse(bce);
    let json = serde_json::to_string(&mse).unwrap();
    assert!(json.contains("\"loss\":\"mse\""), "{json}");
    let back: CaeConfig = serde_json::from_str(&json).unwrap();
    assert_eq!(back, mse);
}
