//! A stacked CAE is the composition of its layers: codes, Jacobians (the product of the layers'
//! Jacobians, checked in f64) and reconstructions through the stacked decoders.
mod common;

use std::collections::HashMap;

use cae_core::{
    layer_on_codes, stack_models, Activation, CaeConfig, ContractiveAutoencoder, LoadedModel,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarMap;
use common::*;

fn loaded(config: &CaeConfig, varmap: &VarMap) -> LoadedModel {
    let tensors: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().copy().unwrap()))
        .collect();
    LoadedModel {
        config: config.clone(),
        tensors,
        metadata: HashMap::new(),
    }
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b)
        .unwrap()
        .abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

fn check(base_hidden: &[usize], tied: bool) {
    let base_config = mlp_config(base_hidden, 7, Activation::Sigmoid, tied);
    let (base, base_vars) = f64_model(&base_config, 3);
    let top_config = layer_on_codes(&base_config, 4).unwrap();
    assert_eq!(top_config.input_dim(), 7);
    let (top, top_vars) = f64_model(&top_config, 4);
    let stacked = stack_models(
        &loaded(&base_config, &base_vars),
        &loaded(&top_config, &top_vars),
    )
    .unwrap()
    .model(DType::F64, &Device::Cpu)
    .unwrap();
    let x = inputs(5, H * W, 8);

    let codes = base.encode(&x).unwrap();
    let code = stacked.encode(&x).unwrap();
    assert_eq!(code.dims(), &[5, 4]);
    assert!(max_abs_diff(&code, &top.encode(&codes).unwrap()) < 1e-14);

    // Dropout below the code (fine-tuning a stack): the top layer sees the thinned lower code.
    let lower = base_hidden.len();
    assert_eq!(stacked.hidden_widths().last(), Some(&7));
    let keep = inputs(5, 7, 9)
        .ge(0.5)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        * 2.0;
    let keep = keep.unwrap();
    let mut masks = vec![Tensor::ones((5, 6), DType::F64, &Device::Cpu).unwrap(); lower];
    masks.push(keep.clone());
    let thinned = stacked.encode_thinned(&x, &masks).unwrap();
    let expected = top.encode(&(&codes * &keep).unwrap()).unwrap();
    assert!(max_abs_diff(&thinned, &expected) < 1e-14);
    assert!(
        max_abs_diff(&thinned, &code) > 1e-3,
        "the mask changed nothing"
    );
    assert!(max_abs_diff(&stacked.encode_thinned(&x, &[]).unwrap(), &code) < 1e-14);
    masks.push(keep);
    let err = stacked.encode_thinned(&x, &masks).unwrap_err().to_string();
    assert!(err.contains("hidden layers below its code"), "{err}");

    // J_stack(x) = J_top(g(x)) · J_base(x), per sample.
    let product = top
        .jacobian(&codes)
        .unwrap()
        .matmul(&base.jacobian(&x).unwrap())
        .unwrap();
    let jac = stacked.jacobian(&x).unwrap();
    assert_eq!(jac.dims(), &[5, 4, H * W]);
    let err = max_abs_diff(&jac, &product);
    assert!(
        err < 1e-13,
        "hidden {base_hidden:?} tied {tied}: Jacobian differs by {err:e}"
    );
    // And both against finite differences of the stacked encoder.
    let fd = jacobian_fd(&stacked, &x, 1e-6);
    let fd = Tensor::new(fd, &Device::Cpu).unwrap();
    assert!(max_abs_diff(&jac, &fd) < 1e-7);
    // The penalty of the stack is its Jacobian's norm.
    let sq = stacked.jacobian_sq_norm(&x).unwrap();
    assert!(max_abs_diff(&sq, &jac.sqr().unwrap().sum((1, 2)).unwrap()) < 1e-12);

    // Reconstruction through the decoders in reverse: f_base(sigmoid(f_top(code))).
    let through = base.decode_logits(&top.decode(&code).unwrap()).unwrap();
    assert!(max_abs_diff(&stacked.decode_logits(&code).unwrap(), &through) < 1e-13);
}

#[test]
fn a_stack_is_the_composition_of_its_layers() {
    check(&[], false);
    check(&[], true);
    check(&[6], false); // a stack on a stack's shape
}

#[test]
fn only_sigmoid_mlps_can_be_stacked_on() {
    let relu = mlp_config(&[], 5, Activation::Relu, false);
    assert!(layer_on_codes(&relu, 3)
        .unwrap_err()
        .to_string()
        .contains("sigmoid"));
    let conv = tiny_conv_config(Activation::Relu, cae_core::PenaltyMethod::Exact);
    assert!(layer_on_codes(&conv, 3)
        .unwrap_err()
        .to_string()
        .contains("MLP"));
    // A top layer of the wrong width.
    let base_config = mlp_config(&[], 7, Activation::Sigmoid, false);
    let (_, base_vars) = f64_model(&base_config, 3);
    let wrong = mlp_config(&[], 3, Activation::Sigmoid, false); // takes 12 inputs, not 7
    let (_, wrong_vars) = f64_model(&wrong, 3);
    let err = stack_models(
        &loaded(&base_config, &base_vars),
        &loaded(&wrong, &wrong_vars),
    );
    assert!(err.unwrap_err().to_string().contains("7 codes"));
    let _ = ContractiveAutoencoder::init;
}
