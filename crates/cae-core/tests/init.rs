//! Seeded initialisation follows the configured distribution.
mod common;

use cae_core::{Activation, ContractiveAutoencoder, WeightInit};
use candle_core::{DType, Device};

/// (max |w|, standard deviation) of one tensor of a freshly initialised model.
fn spread(model: &ContractiveAutoencoder, name: &str) -> (f64, f64) {
    let t = model
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no parameter {name}"))
        .1;
    let v: Vec<f64> = t
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (v.iter().fold(0f64, |m, x| m.max(x.abs())), var.sqrt())
}

#[test]
fn glorot_init_draws_each_side_with_its_own_gain_and_zero_biases() {
    let mut config = common::mlp_config(&[], 300, Activation::Sigmoid, false);
    config.init = WeightInit::GlorotUniform {
        encoder_gain: 4.0,
        decoder_gain: 8.0,
    };
    let (model, _) = ContractiveAutoencoder::init(&config, 1, DType::F32, &Device::Cpu).unwrap();
    let d = config.input_dim();
    let bound = |gain: f64| gain * (6.0 / (d + 300) as f64).sqrt();
    for (name, gain) in [("encoder.0.weight", 4.0), ("decoder.0.weight", 8.0)] {
        let (max, std) = spread(&model, name);
        let b = bound(gain);
        assert!(
            max <= b * (1.0 + 1e-6) && max > 0.95 * b,
            "{name}: max {max}, bound {b}"
        );
        // U(−b, b) has standard deviation b/√3.
        let want = b / 3f64.sqrt();
        assert!(
            (std - want).abs() < 0.05 * want,
            "{name}: std {std}, want {want}"
        );
    }
    for name in ["encoder.0.bias", "decoder.0.bias"] {
        assert_eq!(spread(&model, name).0, 0.0, "{name}");
    }
}

#[test]
fn pytorch_init_bounds_every_tensor_by_one_over_root_fan_in() {
    let config = common::mlp_config(&[], 300, Activation::Sigmoid, false);
    assert_eq!(config.init, WeightInit::Pytorch);
    let (model, _) = ContractiveAutoencoder::init(&config, 1, DType::F32, &Device::Cpu).unwrap();
    let d = config.input_dim() as f64;
    for (name, fan_in) in [
        ("encoder.0.weight", d),
        ("encoder.0.bias", d),
        ("decoder.0.weight", 300.0),
        ("decoder.0.bias", 300.0),
    ] {
        let (max, _) = spread(&model, name);
        let b = 1.0 / fan_in.sqrt();
        assert!(
            max <= b * (1.0 + 1e-6) && max > 0.8 * b,
            "{name}: max {max}, bound {b}"
        );
    }
}

#[test]
fn the_default_preset_uses_glorot_sigmoid_init_and_old_files_read_as_pytorch() {
    let config = cae_core::CaeConfig::preset(cae_core::DEFAULT_PRESET).unwrap();
    assert!(matches!(config.init, WeightInit::GlorotUniform { .. }));
    let mut json: serde_json::Value = serde_json::to_value(&config).unwrap();
    json.as_object_mut().unwrap().remove("init");
    let old: cae_core::CaeConfig = serde_json::from_value(json).unwrap();
    assert_eq!(old.init, WeightInit::Pytorch);
}
