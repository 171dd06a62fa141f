//! The spectrum's signature (σ_k/σ_1, effective rank) against closed forms: an encoder whose
//! Jacobian is a matrix with known singular values at every point.
use cae_core::{
    Activation, Architecture, CaeConfig, ContractiveAutoencoder, MlpConfig, PenaltyMethod,
};
use cae_train::analysis::{effective_rank, point_spectra, SpectrumSignature};
use candle_core::{DType, Device, Tensor};

const CODE: usize = 25;
const SIDE: usize = 6; // 36 inputs

/// `I − 2uuᵀ/‖u‖²`, an orthogonal `n × n` matrix.
fn householder(n: usize, seed: f64) -> Tensor {
    let u: Vec<f64> = (0..n).map(|i| ((i as f64 + 1.0) * seed).sin()).collect();
    let norm2: f64 = u.iter().map(|v| v * v).sum();
    let u = Tensor::from_vec(u, (n, 1), &Device::Cpu).unwrap();
    let outer = (u.matmul(&u.t().unwrap()).unwrap() * (2.0 / norm2)).unwrap();
    (Tensor::eye(n, DType::F64, &Device::Cpu).unwrap() - outer).unwrap()
}

/// A linear one-layer encoder with `W = U diag(s) Vᵀ`: `J(x) = W` everywhere.
fn linear_model(s: &[f64]) -> ContractiveAutoencoder {
    let config = CaeConfig {
        height: SIDE,
        width: SIDE,
        architecture: Architecture::Mlp(MlpConfig {
            hidden: vec![],
            code_dim: CODE,
            hidden_activation: Activation::Identity,
            code_activation: Activation::Identity,
            tied_weights: false,
        }),
        penalty: PenaltyMethod::Exact,
        init: cae_core::WeightInit::Pytorch,
        loss: cae_core::ReconstructionLoss::Bce,
        standardisation: None,
    };
    let (model, varmap) =
        ContractiveAutoencoder::init(&config, 1, DType::F64, &Device::Cpu).unwrap();
    let u = householder(CODE, 0.7);
    let v = householder(SIDE * SIDE, 1.3).narrow(1, 0, CODE).unwrap(); // [36, 25], orthonormal columns
    let diag = Tensor::from_vec(s.to_vec(), CODE, &Device::Cpu).unwrap();
    let w = u
        .broadcast_mul(&diag.unsqueeze(0).unwrap())
        .unwrap()
        .matmul(&v.t().unwrap())
        .unwrap();
    varmap.data().lock().unwrap()["encoder.0.weight"]
        .set(&w)
        .unwrap();
    model
}

#[test]
fn effective_rank_closed_forms() {
    assert!((effective_rank(&[1.0, 1.0, 1.0, 0.0]) - 3.0).abs() < 1e-12);
    let h: f64 = -(2.0f64 / 3.0 * (2.0f64 / 3.0).ln() + 1.0 / 3.0 * (1.0f64 / 3.0).ln());
    assert!((effective_rank(&[2.0, 1.0]) - h.exp()).abs() < 1e-12);
    assert_eq!(effective_rank(&[0.0, 0.0]), 0.0);
}

#[test]
fn signature_of_a_jacobian_with_known_singular_values() {
    let s: Vec<f64> = (0..CODE).map(|i| 3.0 * 0.8f64.powi(i as i32)).collect();
    let model = linear_model(&s);
    let x = Tensor::rand(0f64, 1f64, (3, SIDE * SIDE), &Device::Cpu).unwrap();
    let spectra = point_spectra(&model, &x).unwrap();
    assert_eq!(spectra.len(), 3);
    for spectrum in &spectra {
        for (got, want) in spectrum.iter().zip(&s) {
            assert!((got - want).abs() < 1e-9, "{spectrum:?} vs {s:?}");
        }
    }
    let signature = SpectrumSignature::of(&spectra);
    let expected: Vec<(usize, f64)> = [5, 10, 20]
        .iter()
        .map(|&k| (k, 0.8f64.powi(k as i32 - 1)))
        .collect();
    for ((k, got), (_, want)) in signature.ratios.iter().zip(&expected) {
        assert!((got - want).abs() < 1e-9, "σ_{k}/σ_1 {got} vs {want}");
    }
    assert_eq!(signature.ratios.len(), 3);
    let total: f64 = s.iter().sum();
    let entropy: f64 = s.iter().map(|v| v / total).map(|p| -p * p.ln()).sum();
    assert!((signature.effective_rank - entropy.exp()).abs() < 1e-9);
    // A flatter spectrum has a larger effective rank.
    let flat = SpectrumSignature::of(&point_spectra(&linear_model(&[1.0; CODE]), &x).unwrap());
    assert!((flat.effective_rank - CODE as f64).abs() < 1e-6, "{flat:?}");
    assert!(flat.ratios.iter().all(|(_, r)| (r - 1.0).abs() < 1e-9));
}
