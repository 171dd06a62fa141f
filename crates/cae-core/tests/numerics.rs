//! Loss and model-level numerics: stable BCE, shapes of every preset, tied weights.
mod common;

use cae_core::{bce_with_logits, CaeConfig, ContractiveAutoencoder, Kernels, PRESETS};
use candle_core::{DType, Device, Tensor};

#[test]
fn bce_with_logits_is_finite_for_huge_logits_and_matches_the_direct_formula() {
    let z = Tensor::new(
        &[-1000f32, -90.0, -17.0, -1.0, 0.0, 1.0, 17.0, 90.0, 1000.0],
        &Device::Cpu,
    )
    .unwrap();
    let x = Tensor::new(
        &[0f32, 1.0, 0.5, 0.2, 0.7, 1.0, 0.0, 0.3, 1.0],
        &Device::Cpu,
    )
    .unwrap();
    let got: f32 = bce_with_logits(&z, &x).unwrap().to_scalar().unwrap();
    assert!(got.is_finite());
    // Reference in f64 with log-sum-exp written out per element.
    let zs = [-1000f64, -90.0, -17.0, -1.0, 0.0, 1.0, 17.0, 90.0, 1000.0];
    let xs = [0f64, 1.0, 0.5, 0.2, 0.7, 1.0, 0.0, 0.3, 1.0];
    let reference: f64 = zs
        .iter()
        .zip(xs)
        .map(|(z, x)| {
            // -[x log σ(z) + (1-x) log(1-σ(z))] with log σ(z) = -log(1+e^{-z}).
            let log_sig = -(1.0 + (-z).exp()).ln().max(if *z < 0.0 { -z } else { 0.0 });
            let log_sig = if *z < -30.0 { *z } else { log_sig };
            let log_one_minus = if *z > 30.0 { -z } else { -(1.0 + z.exp()).ln() };
            -(x * log_sig + (1.0 - x) * log_one_minus)
        })
        .sum::<f64>()
        / 9.0;
    assert!(
        ((got as f64) - reference).abs() / reference < 1e-5,
        "{got} vs {reference}"
    );
    // Gradient is finite too.
    let zv = candle_core::Var::from_tensor(&z).unwrap();
    let g = bce_with_logits(zv.as_tensor(), &x)
        .unwrap()
        .backward()
        .unwrap();
    let gz: Vec<f32> = g.get(zv.as_tensor()).unwrap().to_vec1().unwrap();
    assert!(gz.iter().all(|v| v.is_finite()), "{gz:?}");
}

#[test]
fn every_preset_builds_and_maps_a_batch_to_the_right_shapes() {
    for (name, _) in PRESETS {
        let config = CaeConfig::preset(name).unwrap();
        let (model, _) =
            ContractiveAutoencoder::init(&config, 0, DType::F32, &Device::Cpu).unwrap();
        let x = Tensor::rand(0f32, 1f32, (2, 784), &Device::Cpu).unwrap();
        let code = model.encode(&x).unwrap();
        assert_eq!(code.dims(), &[2, model.code_dim()], "{name}");
        assert_eq!(model.reconstruct(&x).unwrap().dims(), &[2, 784], "{name}");
        let loss = model.loss(&x, 1e-4).unwrap();
        let total: f32 = loss.total.to_scalar().unwrap();
        assert!(total.is_finite() && total > 0.0, "{name}: {total}");
    }
    assert_eq!(CaeConfig::preset("conv").unwrap().code_dim().unwrap(), 1024);
}

#[test]
fn unknown_preset_lists_the_known_ones() {
    let err = CaeConfig::preset("nope").unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("rifai2011"), "{err}");
}

#[test]
fn conv_decoder_that_does_not_rebuild_the_input_size_is_rejected() {
    let mut config = CaeConfig::preset("conv").unwrap();
    if let cae_core::Architecture::Conv(c) = &mut config.architecture {
        c.decoder[2].kernel = 5;
    }
    let err = config.validate().unwrap_err().to_string();
    assert!(err.contains("must produce (1, 28, 28)"), "{err}");
}

/// `x` with about four entries in five set to zero, as in images that are mostly background: the
/// fused kernels take their sparse path for such inputs.
fn mostly_zero(x: Tensor) -> Tensor {
    let keep = Tensor::rand(0f32, 1f32, x.shape(), &Device::Cpu)
        .unwrap()
        .ge(0.8)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    (x * keep).unwrap()
}

/// Every one-layer configuration the fused kernels handle, with a dense or mostly-zero input flag
/// and a label: each activation, tied and untied, and code size 70 to cross the sparse kernel's
/// 64-column panels.
fn for_each_fused_case(mut check: impl FnMut(cae_core::CaeConfig, bool, &str)) {
    for (code, sparse) in [(7, false), (7, true), (70, true)] {
        for act in cae_core::Activation::ALL {
            for tied in [false, true] {
                let config = common::mlp_config(&[], code, act, tied);
                check(
                    config,
                    sparse,
                    &format!("{act} tied={tied} code={code} sparse={sparse}"),
                );
            }
        }
    }
}

#[test]
fn fused_cpu_step_matches_autograd_for_every_activation_tied_and_untied_dense_and_sparse() {
    for_each_fused_case(|config, sparse, what| {
        let init = || ContractiveAutoencoder::init(&config, 9, DType::F32, &Device::Cpu).unwrap();
        // The same weights, with candle's ops only: the fused kernel is then never taken.
        let (model, reference) = (init().0, init().0.with_kernels(Kernels::CandleOnly));
        let mut x = Tensor::rand(0f32, 1f32, (5, 12), &Device::Cpu).unwrap();
        if sparse {
            x = mostly_zero(x);
        }
        check_fused_step(&model, &reference, &x, what);
    });
}

fn check_fused_step(
    model: &ContractiveAutoencoder,
    autograd: &ContractiveAutoencoder,
    x: &Tensor,
    what: &str,
) {
    let fused = model.loss_and_gradients(x, 0.3).unwrap();
    let reference = autograd.loss_and_gradients(x, 0.3).unwrap();
    assert!(
        (fused.reconstruction - reference.reconstruction).abs()
            < 1e-5 * reference.reconstruction.abs().max(1.0),
        "{what} bce"
    );
    assert!(
        (fused.penalty - reference.penalty).abs() < 1e-4 * reference.penalty.abs().max(1e-3),
        "{what} penalty {} vs {}",
        fused.penalty,
        reference.penalty
    );
    assert_eq!(fused.gradients.len(), reference.gradients.len(), "{what}");
    for (name, g) in reference.gradients.iter() {
        let a: Vec<f32> = fused
            .gradients
            .by_name(name)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let b: Vec<f32> = g.flatten_all().unwrap().to_vec1().unwrap();
        let diff: f32 = a
            .iter()
            .zip(&b)
            .map(|(p, q)| (p - q).powi(2))
            .sum::<f32>()
            .sqrt();
        let scale: f32 = b.iter().map(|q| q * q).sum::<f32>().sqrt().max(1e-6);
        assert!(
            diff / scale < 1e-4,
            "{what}: gradient of {name} differs from autograd by {}",
            diff / scale
        );
    }
}

/// The largest absolute difference between two tensors of the same shape.
fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    let a: Vec<f32> = a.flatten_all().unwrap().to_vec1().unwrap();
    let b: Vec<f32> = b.flatten_all().unwrap().to_vec1().unwrap();
    a.iter()
        .zip(&b)
        .map(|(p, q)| (p - q).abs())
        .fold(0.0, f32::max)
}

/// The same freshly initialised weights twice: held in variables, which take candle's ops, and
/// loaded from a file (plain tensors, nothing tracked), which take the fused kernel.
fn tracked_and_loaded(
    config: &cae_core::CaeConfig,
    seed: u64,
) -> (ContractiveAutoencoder, ContractiveAutoencoder) {
    let (tracked, varmap) =
        ContractiveAutoencoder::init(config, seed, DType::F32, &Device::Cpu).unwrap();
    let bytes = cae_core::model_to_bytes(config, &varmap, &Default::default()).unwrap();
    let loaded = cae_core::model_from_bytes(&bytes, "m".as_ref(), &Device::Cpu)
        .unwrap()
        .model(DType::F32, &Device::Cpu)
        .unwrap();
    (tracked, loaded)
}

/// The fused kernel's code and reconstruction of `x` are candle's to 1e-5.
fn assert_fused_inference_matches_candle_ops(config: &cae_core::CaeConfig, x: &Tensor, what: &str) {
    let (tracked, loaded) = tracked_and_loaded(config, 4);
    let code = max_abs_diff(&loaded.encode(x).unwrap(), &tracked.encode(x).unwrap());
    assert!(code < 1e-5, "{what}: codes differ by {code}");
    let rec = max_abs_diff(
        &loaded.reconstruct(x).unwrap(),
        &tracked.reconstruct(x).unwrap(),
    );
    assert!(rec < 1e-5, "{what}: reconstructions differ by {rec}");
}

#[test]
fn fused_inference_matches_candle_ops_for_every_activation_tied_and_untied_dense_and_sparse() {
    for_each_fused_case(|config, sparse, what| {
        let mut x = (Tensor::rand(-3f32, 3f32, (9, 12), &Device::Cpu).unwrap() * 4.0).unwrap();
        if sparse {
            x = mostly_zero(x);
        }
        assert_fused_inference_matches_candle_ops(&config, &x, what);
    });
}

#[test]
fn fused_inference_of_a_batch_of_several_tasks_with_sparse_and_dense_rows_matches_candle_ops() {
    // 2,500 rows cross the fused forward pass's 512-row tasks: the first two are mostly zeros
    // (sparse product), the rest dense, the last one short.
    let config = common::mlp_config(&[], 70, cae_core::Activation::Sigmoid, false);
    let sparse = mostly_zero(Tensor::rand(0f32, 1f32, (1100, 12), &Device::Cpu).unwrap());
    let dense = Tensor::rand(0f32, 1f32, (1400, 12), &Device::Cpu).unwrap();
    let x = Tensor::cat(&[&sparse, &dense], 0).unwrap();
    assert_fused_inference_matches_candle_ops(&config, &x, "2,500 rows");
}

#[test]
fn reconstruction_of_a_variable_input_still_has_a_gradient() {
    let config = common::mlp_config(&[], 7, cae_core::Activation::Sigmoid, false);
    let (_, model) = tracked_and_loaded(&config, 4);
    let x =
        candle_core::Var::from_tensor(&Tensor::rand(0f32, 1f32, (3, 12), &Device::Cpu).unwrap())
            .unwrap();
    let grads = model
        .reconstruct(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = grads.get(x.as_tensor()).expect("a gradient for the input");
    let norm: f32 = g.sqr().unwrap().sum_all().unwrap().to_scalar().unwrap();
    assert!(norm > 0.0);
}
