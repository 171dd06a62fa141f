//! The Manifold Tangent Classifier's pieces: the tangent-propagation penalty against finite
//! differences of the classifier's probabilities (value) and of the penalty (gradients), in f64;
//! the tangents against a Jacobian whose singular vectors are known; classifier files.
mod common;

use std::collections::BTreeMap;

use cae_core::{read_classifier, save_classifier, Activation, Classifier, ClassifierConfig};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use common::*;

const CLASSES: usize = 3;

fn classifier(hidden: &[usize]) -> (Classifier, VarMap, cae_core::CaeConfig) {
    let config = mlp_config(hidden, 5, Activation::Sigmoid, false);
    let varmap = cae_core::init_varmap(&config, 2, DType::F64, &Device::Cpu).unwrap();
    Classifier::init_head(&varmap, &config, CLASSES, 3, DType::F64, &Device::Cpu).unwrap();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    (
        Classifier::new(&config, CLASSES, vb).unwrap(),
        varmap,
        config,
    )
}

#[test]
fn tangent_propagation_value_and_gradients_match_finite_differences() {
    for hidden in [&[][..], &[6][..]] {
        let (clf, varmap, _) = classifier(hidden);
        let x = inputs(4, H * W, 1);
        let tangents = ((inputs(2 * 4, H * W, 6) - 0.5)
            .unwrap()
            .reshape((2, 4, H * W)))
        .unwrap();
        let exact: Vec<f64> = clf
            .tangent_propagation(&x, &tangents)
            .unwrap()
            .to_vec1()
            .unwrap();

        // Σ_i ‖(p(x + h u_i) − p(x − h u_i)) / 2h‖².
        let h = 1e-6;
        let mut fd = vec![0.0; 4];
        for i in 0..2 {
            let u = tangents.get(i).unwrap();
            let p = |s: f64| -> Vec<Vec<f64>> {
                let xs = (&x + (&u * s).unwrap()).unwrap();
                clf.probabilities(&xs).unwrap().to_vec2().unwrap()
            };
            let (plus, minus) = (p(h), p(-h));
            for b in 0..4 {
                fd[b] += plus[b]
                    .iter()
                    .zip(&minus[b])
                    .map(|(a, m)| ((a - m) / (2.0 * h)).powi(2))
                    .sum::<f64>();
            }
        }
        let err = rel_err(&exact, &fd);
        assert!(
            err < 1e-5,
            "hidden {hidden:?}: {exact:?} vs {fd:?} ({err:e})"
        );

        check_param_gradients(
            &varmap,
            || {
                clf.tangent_propagation(&x, &tangents)
                    .unwrap()
                    .mean(0)
                    .unwrap()
            },
            1e-6,
            1e-4,
            &format!("tangent propagation, hidden {hidden:?}"),
        );
    }
}

#[test]
fn cross_entropy_is_minus_log_probability_of_the_label() {
    let (clf, _, _) = classifier(&[]);
    let x = inputs(3, H * W, 2);
    let labels = Tensor::new(&[0u32, 2, 1], &Device::Cpu).unwrap();
    let ce = clf
        .cross_entropy(&x, &labels)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let p: Vec<Vec<f64>> = clf.probabilities(&x).unwrap().to_vec2().unwrap();
    let expected = -(p[0][0].ln() + p[1][2].ln() + p[2][1].ln()) / 3.0;
    assert!((ce - expected).abs() < 1e-12, "{ce} vs {expected}");
}

/// A linear encoder `W` with `W_ii = s_i`, zero elsewhere: `J = W` everywhere, its right singular
/// vectors are the unit vectors `e_i` in the order of `s`.
#[test]
fn tangents_are_the_leading_right_singular_vectors() {
    let config = mlp_config(&[], 5, Activation::Identity, false);
    let (model, varmap) = f64_model(&config, 1);
    let s = [0.5, 3.0, 1.0, 2.0, 0.1];
    let mut w = vec![0.0; 5 * H * W];
    for (i, v) in s.iter().enumerate() {
        w[i * H * W + i] = *v;
    }
    let vars = varmap.data().lock().unwrap();
    vars["encoder.0.weight"]
        .set(&Tensor::from_vec(w, (5, H * W), &Device::Cpu).unwrap())
        .unwrap();
    drop(vars);
    let x = inputs(3, H * W, 5);
    let basis = model.tangent_basis(&x, 2, 40, 7).unwrap();
    assert_eq!(basis.dims(), &[2, 3, H * W]);
    for b in 0..3 {
        for (i, axis) in [1usize, 3].iter().enumerate() {
            let v: Vec<f64> = basis.get(i).unwrap().get(b).unwrap().to_vec1().unwrap();
            assert!(
                (v[*axis].abs() - 1.0).abs() < 1e-9,
                "tangent {i} of {b}: {v:?}"
            );
        }
    }
    // A rank-5 Jacobian has no sixth direction: asking for 6 gives one zero vector.
    let basis = model.tangent_basis(&x, 6, 40, 7).unwrap();
    let last: Vec<f64> = basis
        .get(5)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(last.iter().all(|v| *v == 0.0));
}

#[test]
fn classifier_files_round_trip_and_name_their_problems() {
    let (clf, varmap, config) = classifier(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("clf.safetensors");
    let head = ClassifierConfig { classes: CLASSES };
    save_classifier(&path, &config, &head, &varmap, &BTreeMap::new()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert!(cae_core::is_classifier(&bytes));
    let loaded = read_classifier(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.classifier, head);
    let back = loaded.classifier(DType::F64, &Device::Cpu).unwrap();
    let x = inputs(2, H * W, 3);
    let a: Vec<Vec<f64>> = clf.probabilities(&x).unwrap().to_vec2().unwrap();
    let b: Vec<Vec<f64>> = back.probabilities(&x).unwrap().to_vec2().unwrap();
    assert_eq!(a, b);
    // A plain model file is not a classifier.
    let model_path = dir.path().join("model.safetensors");
    cae_core::save_model(&model_path, &config, &varmap, &BTreeMap::new()).unwrap();
    assert!(!cae_core::is_classifier(
        &std::fs::read(&model_path).unwrap()
    ));
    let err = read_classifier(&model_path, &Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("cae.classifier"),
        "{err}"
    );
}
