//! Saving and loading model files: bit-exact round trips and a clear error for every kind of bad file.
mod common;

use std::collections::BTreeMap;

use cae_core::{
    model_to_bytes, read_model, save_model, tensors_to_bytes, Activation, CaeConfig, CaeError,
    ContractiveAutoencoder, CONFIG_KEY,
};
use candle_core::{DType, Device, Tensor};
use common::*;

fn saved_small_model(dir: &std::path::Path) -> (std::path::PathBuf, CaeConfig, candle_nn::VarMap) {
    let config = mlp_config(&[5], 4, Activation::Tanh, false);
    let (_, varmap) = ContractiveAutoencoder::init(&config, 3, DType::F32, &Device::Cpu).unwrap();
    let path = dir.join("model.safetensors");
    save_model(
        &path,
        &config,
        &varmap,
        &BTreeMap::from([("note".to_string(), "hello".to_string())]),
    )
    .unwrap();
    (path, config, varmap)
}

#[test]
fn save_then_load_is_bit_exact_and_keeps_config_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, varmap) = saved_small_model(dir.path());
    let loaded = read_model(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config, config);
    assert_eq!(
        loaded.metadata.get("note").map(String::as_str),
        Some("hello")
    );
    for (name, var) in varmap.data().lock().unwrap().iter() {
        let a: Vec<u32> = var
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let b: Vec<u32> = loaded.tensors[name]
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .map(|v| v.to_bits())
            .collect();
        assert_eq!(a, b, "tensor {name} changed in the round trip");
    }
    // The loaded model computes exactly what the original computed.
    let original = ContractiveAutoencoder::new(
        &config,
        candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let reloaded = ContractiveAutoencoder::load(&path, DType::F32, &Device::Cpu).unwrap();
    let x = Tensor::rand(0f32, 1f32, (3, 12), &Device::Cpu).unwrap();
    let ra: Vec<f32> = original
        .reconstruct(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let rb: Vec<f32> = reloaded
        .reconstruct(&x)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert_eq!(ra, rb);
    // No temporary file is left next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[test]
fn same_seed_gives_same_weights_and_other_seed_differs() {
    let config = CaeConfig::preset("small").unwrap();
    let bytes = |seed| {
        let (_, vm) =
            ContractiveAutoencoder::init(&config, seed, DType::F32, &Device::Cpu).unwrap();
        model_to_bytes(&config, &vm, &BTreeMap::new()).unwrap()
    };
    assert_eq!(bytes(1), bytes(1));
    assert_ne!(bytes(1), bytes(2));
}

fn write_with(
    dir: &std::path::Path,
    config: &CaeConfig,
    edit: impl FnOnce(&mut BTreeMap<String, Tensor>),
) -> std::path::PathBuf {
    let (_, varmap) = ContractiveAutoencoder::init(config, 3, DType::F32, &Device::Cpu).unwrap();
    let mut tensors: BTreeMap<String, Tensor> = varmap
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
        .collect();
    edit(&mut tensors);
    let meta = BTreeMap::from([(
        CONFIG_KEY.to_string(),
        serde_json::to_string(config).unwrap(),
    )]);
    let path = dir.join("edited.safetensors");
    std::fs::write(&path, tensors_to_bytes(&tensors, &meta).unwrap()).unwrap();
    path
}

#[test]
fn missing_tensor_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = mlp_config(&[5], 4, Activation::Tanh, false);
    let path = write_with(dir.path(), &config, |t| {
        t.remove("encoder.1.weight");
    });
    let err = read_model(&path, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, CaeError::MissingTensor { name, .. } if name == "encoder.1.weight"),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("edited.safetensors") && msg.contains("encoder.1.weight"),
        "{msg}"
    );
}

#[test]
fn wrong_shape_names_tensor_and_both_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let config = mlp_config(&[5], 4, Activation::Tanh, false);
    let path = write_with(dir.path(), &config, |t| {
        t.insert(
            "decoder.0.weight".into(),
            Tensor::zeros((5, 3), DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = read_model(&path, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CaeError::WrongShape { .. }), "{msg}");
    assert!(
        msg.contains("decoder.0.weight") && msg.contains("[5, 3]") && msg.contains("[5, 4]"),
        "{msg}"
    );
}

#[test]
fn wrong_dtype_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = mlp_config(&[], 4, Activation::Sigmoid, false);
    let path = write_with(dir.path(), &config, |_| {});
    // Rewrite one tensor as I64 with the safetensors crate directly.
    let bytes = std::fs::read(&path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let ints = vec![0u8; 4 * 8];
    let mut views: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .filter(|(n, _)| n != "encoder.0.bias")
        .collect();
    views.push((
        "encoder.0.bias".into(),
        safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![4], &ints).unwrap(),
    ));
    std::fs::write(
        &path,
        safetensors::serialize(views, header.metadata().clone()).unwrap(),
    )
    .unwrap();
    let err = read_model(&path, &Device::Cpu).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CaeError::WrongDtype { .. }), "{msg}");
    assert!(
        msg.contains("encoder.0.bias") && msg.contains("I64"),
        "{msg}"
    );
}

#[test]
fn not_safetensors_and_empty_files_are_rejected_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("junk.safetensors", b"this is not a model at all".to_vec()),
        ("empty.safetensors", vec![]),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let err = read_model(&path, &Device::Cpu).unwrap_err();
        assert!(matches!(err, CaeError::NotSafetensors { .. }), "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn file_without_config_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.safetensors");
    let t = BTreeMap::from([(
        "w".to_string(),
        Tensor::zeros(3, DType::F32, &Device::Cpu).unwrap(),
    )]);
    std::fs::write(&path, tensors_to_bytes(&t, &BTreeMap::new()).unwrap()).unwrap();
    let err = read_model(&path, &Device::Cpu).unwrap_err();
    assert!(matches!(err, CaeError::MissingConfig { .. }), "{err}");
}

#[test]
fn missing_file_error_names_the_path() {
    let err = read_model(
        std::path::Path::new("/nonexistent/model.safetensors"),
        &Device::Cpu,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("/nonexistent/model.safetensors"),
        "{err}"
    );
}

#[test]
fn same_tensors_and_metadata_always_give_the_same_bytes() {
    // safetensors keeps metadata in a HashMap; the file must not depend on its iteration order.
    let tensors: BTreeMap<String, Tensor> = (0..3)
        .map(|i| {
            let t = Tensor::full(i as f32, (2, 3), &Device::Cpu).unwrap();
            (format!("t{i}"), t)
        })
        .collect();
    let metadata: BTreeMap<String, String> = (0..8)
        .map(|i| (format!("key{i}"), format!("value {i}")))
        .collect();
    let first = cae_core::tensors_to_bytes(&tensors, &metadata).unwrap();
    for _ in 0..20 {
        assert_eq!(
            cae_core::tensors_to_bytes(&tensors, &metadata).unwrap(),
            first
        );
    }
    let header_len = u64::from_le_bytes(first[..8].try_into().unwrap()) as usize;
    let header = std::str::from_utf8(&first[8..8 + header_len]).unwrap();
    let positions: Vec<usize> = (0..8)
        .map(|i| header.find(&format!("\"key{i}\"")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{header}");
    let back = safetensors::SafeTensors::deserialize(&first).unwrap();
    assert_eq!(back.names().len(), 3);
}

#[test]
fn non_finite_weights_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config, varmap) = saved_small_model(dir.path());
    let name = cae_core::param_specs(&config).unwrap()[0].name.clone();
    {
        let vars = varmap.data().lock().unwrap();
        let t = vars[&name].as_tensor();
        let poisoned = (t.zeros_like().unwrap() + f64::INFINITY).unwrap();
        vars[&name].set(&poisoned).unwrap();
    }
    save_model(&path, &config, &varmap, &BTreeMap::new()).unwrap();
    let err = read_model(&path, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, CaeError::NonFiniteTensor { name: n, index: 0, .. } if *n == name),
        "{err}"
    );
    assert!(err.to_string().contains(&name), "{err}");
}

#[test]
fn an_unknown_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config, varmap) = saved_small_model(dir.path());
    let bytes = model_to_bytes(
        &config,
        &varmap,
        &BTreeMap::from([("x".to_string(), "y".to_string())]),
    )
    .unwrap();
    // Rewrite the version in place: `"cae.format":"1"` → `"cae.format":"9"`.
    let needle = br#""cae.format":"1""#;
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the header records the format");
    let mut future = bytes.clone();
    future[at + needle.len() - 2] = b'9';
    let path = dir.path().join("future.safetensors");
    std::fs::write(&path, future).unwrap();
    let err = read_model(&path, &Device::Cpu).unwrap_err();
    assert!(
        matches!(&err, CaeError::UnsupportedFormat { found, .. } if found == "9"),
        "{err}"
    );
}
