//! The `analysis` metrics on hand-built models and data whose answers are known.
use std::collections::HashMap;

use cae_core::{
    Activation, Architecture, CaeConfig, ContractiveAutoencoder, MlpConfig, PenaltyMethod,
};
use cae_data::Dataset;
use cae_train::analysis::{self, EvalOptions};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

const DEV: Device = Device::Cpu;

/// A one-layer model `code = act(W x + b)` on `h × w` inputs, with a fixed decoder.
fn one_layer(
    h: usize,
    w: usize,
    code: usize,
    weight: &[f32],
    bias: &[f32],
    act: Activation,
) -> ContractiveAutoencoder {
    let input = h * w;
    assert_eq!(weight.len(), code * input);
    assert_eq!(bias.len(), code);
    let cfg = CaeConfig {
        height: h,
        width: w,
        architecture: Architecture::Mlp(MlpConfig {
            hidden: vec![],
            code_dim: code,
            hidden_activation: Activation::Identity,
            code_activation: act,
            tied_weights: false,
        }),
        penalty: PenaltyMethod::Exact,
        init: cae_core::WeightInit::Pytorch,
        loss: cae_core::ReconstructionLoss::Bce,
        standardisation: None,
    };
    let dec: Vec<f32> = (0..input * code)
        .map(|i| ((i * 7 % 11) as f32 - 5.0) / 5.0)
        .collect();
    let t = |v: &[f32], shape: &[usize]| Tensor::from_slice(v, shape, &DEV).unwrap();
    let tensors = HashMap::from([
        ("encoder.0.weight".to_string(), t(weight, &[code, input])),
        ("encoder.0.bias".to_string(), t(bias, &[code])),
        ("decoder.0.weight".to_string(), t(&dec, &[input, code])),
        ("decoder.0.bias".to_string(), t(&vec![0.1; input], &[input])),
    ]);
    let vb = VarBuilder::from_tensors(tensors, DType::F32, &DEV);
    ContractiveAutoencoder::new(&cfg, vb).unwrap()
}

/// Row-major product of `a` (`n × m`) and `b` (`m × p`).
fn matmul(a: &[f32], b: &[f32], n: usize, m: usize, p: usize) -> Vec<f32> {
    let mut out = vec![0f32; n * p];
    for i in 0..n {
        for k in 0..m {
            for j in 0..p {
                out[i * p + j] += a[i * m + k] * b[k * p + j];
            }
        }
    }
    out
}

/// The 4×4 Hadamard matrix / 2: orthogonal and symmetric.
fn hadamard4() -> Vec<f32> {
    #[rustfmt::skip]
    let h = [1., 1., 1., 1., 1., -1., 1., -1., 1., 1., -1., -1., 1., -1., -1., 1.];
    h.iter().map(|v| v * 0.5).collect()
}

/// `W = U · diag(s) · H` for `U` the first `s.len()` coordinate axes of `R^rows`: singular values `s`.
fn with_singular_values(rows: usize, s: &[f32]) -> Vec<f32> {
    let h = hadamard4();
    let mut us = vec![0f32; rows * 4];
    for (i, &v) in s.iter().enumerate() {
        us[i * 4 + i] = v;
    }
    matmul(&us, &h, rows, 4, 4)
}

/// Deterministic values in [-1, 1).
fn pseudo_random(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn points(n: usize, dim: usize, seed: u64) -> Tensor {
    let v: Vec<f32> = pseudo_random(n * dim, seed)
        .iter()
        .map(|v| 0.5 + 0.5 * v)
        .collect();
    Tensor::from_vec(v, (n, dim), &DEV).unwrap()
}

fn assert_close(a: f64, b: f64, tol: f64, what: &str) {
    assert!(
        (a - b).abs() <= tol * b.abs().max(1.0),
        "{what}: {a} vs {b}"
    );
}

#[test]
fn spectrum_of_a_linear_encoder_is_the_singular_values_of_w() {
    // code < input: eigenvalues of J Jᵀ.
    let s = [3.0, 1.0, 0.5];
    let model = one_layer(
        2,
        2,
        3,
        &with_singular_values(3, &s),
        &[0.1, -0.2, 0.3],
        Activation::Identity,
    );
    let x = points(20, 4, 1);
    let spectrum = analysis::singular_value_spectrum(&model, &x, 10).unwrap();
    assert_eq!(spectrum.len(), 3);
    for (got, want) in spectrum.iter().zip(s) {
        assert_close(*got, want as f64, 1e-5, "singular value");
    }
    // k truncates.
    assert_eq!(
        analysis::singular_value_spectrum(&model, &x, 2)
            .unwrap()
            .len(),
        2
    );

    // code > input: eigenvalues of Jᵀ J; a zero singular value is kept.
    let s = [2.0, 1.5, 0.25, 0.0];
    let model = one_layer(
        2,
        2,
        6,
        &with_singular_values(6, &s),
        &[0.0; 6],
        Activation::Identity,
    );
    let spectrum = analysis::singular_value_spectrum(&model, &x, 10).unwrap();
    assert_eq!(spectrum.len(), 4);
    for (got, want) in spectrum.iter().zip(s) {
        assert!((got - want as f64).abs() < 1e-3, "{spectrum:?}");
    }

    // The mean ‖J‖_F of a linear encoder is ‖W‖_F at every point.
    let data = Dataset::from_raw(
        (0..40).map(|i| (i * 37 % 256) as u8).collect(),
        vec![0; 10],
        2,
        2,
    )
    .unwrap();
    let (_, fro) = analysis::reconstruction_by_class(&model, &data, &DEV).unwrap();
    assert_close(fro, (4.0f64 + 2.25 + 0.0625).sqrt(), 1e-5, "‖W‖_F");
}

#[test]
fn linear_contraction_ratio_lies_between_the_extreme_singular_values() {
    let (lo, hi) = (0.5, 3.0);
    // W = H·diag(s)·H: right singular vectors are the rows of H.
    let w = matmul(
        &hadamard4(),
        &with_singular_values(4, &[3.0, 2.0, 1.0, 0.5]),
        4,
        4,
        4,
    );
    let model = one_layer(2, 2, 4, &w, &[0.0; 4], Activation::Identity);
    let x = points(50, 4, 2);
    let radii = [1e-2, 1.0, 100.0];
    let curve = analysis::contraction_curve(&model, &x, &radii, 3, 9).unwrap();
    assert_eq!(curve.len(), 3);
    for (&(r, ratio), want_r) in curve.iter().zip(radii) {
        assert_eq!(r, want_r);
        assert!(ratio > lo && ratio < hi, "r {r}: ratio {ratio}");
    }
    // Every single direction, too; along the extreme right singular vectors the ratio is σ.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let u = analysis::random_unit_directions(&mut rng, 50, 4);
    let norms: Vec<f32> = u
        .chunks(4)
        .map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt())
        .collect();
    assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-5));
    let u = Tensor::from_vec(u, (50, 4), &DEV).unwrap();
    for ratio in analysis::contraction_ratios(&model, &x, &u, 0.7).unwrap() {
        assert!(ratio > lo - 1e-4 && ratio < hi + 1e-4, "{ratio}");
    }
    let h = hadamard4();
    let axes = Tensor::from_vec([&h[0..4], &h[12..16]].concat(), (2, 4), &DEV).unwrap();
    let x2 = x.narrow(0, 0, 2).unwrap();
    let ratios = analysis::contraction_ratios(&model, &x2, &axes, 0.3).unwrap();
    assert_close(ratios[0], hi, 1e-4, "σ_max direction");
    assert_close(ratios[1], lo, 1e-4, "σ_min direction");
}

#[test]
fn contraction_curve_is_the_mean_of_seeded_ratios() {
    let w = pseudo_random(5 * 9, 4);
    let model = one_layer(3, 3, 5, &w, &pseudo_random(5, 5), Activation::Tanh);
    let x = points(7, 9, 6);
    let (radii, samples, seed) = ([0.05, 0.5], 2, 11);
    let curve = analysis::contraction_curve(&model, &x, &radii, samples, seed).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (&(_, got), r) in curve.iter().zip(radii) {
        let mut sum = 0.0;
        for _ in 0..samples {
            let u = analysis::random_unit_directions(&mut rng, 7, 9);
            let u = Tensor::from_vec(u, (7, 9), &DEV).unwrap();
            sum += analysis::contraction_ratios(&model, &x, &u, r)
                .unwrap()
                .iter()
                .sum::<f64>();
        }
        assert_close(got, sum / 14.0, 1e-12, "curve point");
    }
}

#[test]
fn tanh_contraction_at_tiny_radius_is_the_directional_derivative() {
    let (n, d, c) = (12, 9, 5);
    let model = one_layer(
        3,
        3,
        c,
        &pseudo_random(c * d, 7),
        &pseudo_random(c, 8),
        Activation::Tanh,
    );
    let x = points(n, d, 9);
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let u = Tensor::from_vec(
        analysis::random_unit_directions(&mut rng, n, d),
        (n, d),
        &DEV,
    )
    .unwrap();
    let ratios = analysis::contraction_ratios(&model, &x, &u, 1e-3).unwrap();
    // ‖J(x) u‖ from the exact Jacobian.
    let ju = model
        .jacobian(&x)
        .unwrap()
        .matmul(&u.unsqueeze(2).unwrap())
        .unwrap()
        .sqr()
        .unwrap()
        .sum((1, 2))
        .unwrap()
        .sqrt()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    for (r, j) in ratios.iter().zip(ju) {
        assert!((r - j as f64).abs() < 5e-3 * j as f64, "{r} vs ‖Ju‖ {j}");
    }

    // W = 2·I, b = 0 at x = 0: J = 2·I, so the ratio is 2 as r → 0 and falls as tanh saturates.
    let mut w = vec![0f32; 16];
    (0..4).for_each(|i| w[i * 4 + i] = 2.0);
    let model = one_layer(2, 2, 4, &w, &[0.0; 4], Activation::Tanh);
    let zero = Tensor::zeros((5, 4), DType::F32, &DEV).unwrap();
    let curve = analysis::contraction_curve(&model, &zero, &[1e-3, 0.1, 1.0, 10.0], 4, 1).unwrap();
    assert_close(curve[0].1, 2.0, 1e-3, "tiny radius");
    assert!(curve.windows(2).all(|p| p[1].1 < p[0].1), "{curve:?}");
    // ‖tanh(20u)‖ ≤ √4, so at r = 10 the ratio is at most 0.2.
    assert!(curve[3].1 <= 0.2 && curve[3].1 > 0.05, "{curve:?}");
}

#[test]
fn tangents_of_a_diagonal_encoder_are_the_axes_of_its_largest_entries() {
    let axis = |i: usize| {
        let mut e = vec![0f32; 4];
        e[i] = 1.0;
        e
    };
    // code < input: rows 2·e1, 5·e3, 1·e0.
    let mut w = vec![0f32; 12];
    w[1] = 2.0;
    w[4 + 3] = 5.0;
    w[8] = 1.0;
    let model = one_layer(2, 2, 3, &w, &[0.0; 3], Activation::Identity);
    let x = Tensor::from_slice(&[0.2f32, 0.4, 0.6, 0.8], 4, &DEV).unwrap();
    let t = analysis::leading_tangents(&model, &x, 2).unwrap();
    assert_eq!(t.len(), 2);
    for (got, want) in t.iter().zip([axis(3), axis(1)]) {
        assert!(
            got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
            "{got:?}"
        );
    }
    // Only 3 non-zero singular values: asking for 4 gives 3.
    assert_eq!(analysis::leading_tangents(&model, &x, 4).unwrap().len(), 3);

    // code > input (diag 1, 4, 3, 0.5 and a zero row), a [1, input] input, negative entries.
    let mut w = vec![0f32; 20];
    w[0] = 1.0;
    w[4 + 1] = -4.0;
    w[8 + 2] = 3.0;
    w[12 + 3] = 0.5;
    let model = one_layer(2, 2, 5, &w, &[0.0; 5], Activation::Identity);
    let t = analysis::leading_tangents(&model, &x.unsqueeze(0).unwrap(), 3).unwrap();
    for (got, want) in t.iter().zip([axis(1), axis(2), axis(0)]) {
        assert!(
            got.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-5),
            "{got:?}"
        );
    }

    // Drawn: zero is mid-grey, the peak white, its negation black.
    let grid = analysis::tangent_grid(&[vec![vec![0.0, 2.0, -2.0, 1.0]]], 2, 2, 1);
    assert_eq!(grid.dimensions(), (2, 2));
    let px: Vec<u8> = grid.pixels().map(|p| p[0]).collect();
    assert_eq!(px, vec![128, 255, 0, 191]);
}

#[test]
fn saturation_counts_codes_near_zero_and_one() {
    let codes = Tensor::new(&[[0.01f32, 0.5, 0.99, 0.96], [0.04, 0.05, 0.95, 0.2]], &DEV).unwrap();
    assert_eq!(analysis::saturation_of_codes(&codes).unwrap(), 0.5);

    // W = 0: every code equals the bias.
    let model = one_layer(
        2,
        2,
        3,
        &[0.0; 12],
        &[0.01, 0.5, 0.99],
        Activation::Identity,
    );
    let data = Dataset::from_raw(vec![9; 4 * 1500], vec![1; 1500], 2, 2).unwrap();
    let s = analysis::saturation(&model, &data, &DEV).unwrap();
    assert!((s - 2.0 / 3.0).abs() < 1e-12, "{s}");
    assert!(!analysis::codes_are_sigmoid(&model));
}

/// Points around class means `4·e_class` in `dim` dimensions, Gaussian-ish noise.
fn clusters(n: usize, dim: usize, classes: usize, seed: u64) -> (Tensor, Vec<u8>) {
    let noise = pseudo_random(n * dim, seed);
    let labels: Vec<u8> = (0..n).map(|i| (i * 7 % classes) as u8).collect();
    let v: Vec<f32> = (0..n * dim)
        .map(|k| {
            let (i, j) = (k / dim, k % dim);
            noise[k] + if j == labels[i] as usize { 4.0 } else { 0.0 }
        })
        .collect();
    (Tensor::from_vec(v, (n, dim), &DEV).unwrap(), labels)
}

#[test]
fn linear_probe_separates_separable_data_and_not_random_labels() {
    let (xtr, ytr) = clusters(600, 5, 3, 20);
    let (xte, yte) = clusters(300, 5, 3, 21);
    let p = analysis::linear_probe(&xtr, &ytr, &xte, &yte, 3, 20, 0.5).unwrap();
    assert!(p.test_accuracy >= 0.95 && p.train_accuracy >= 0.95, "{p:?}");

    let random_labels = |n, seed| -> Vec<u8> {
        pseudo_random(n, seed)
            .iter()
            .map(|v| (*v > 0.0) as u8)
            .collect()
    };
    let xtr = points(500, 5, 30);
    let xte = points(1000, 5, 31);
    let p = analysis::linear_probe(
        &xtr,
        &random_labels(500, 32),
        &xte,
        &random_labels(1000, 33),
        2,
        20,
        0.5,
    )
    .unwrap();
    assert!((p.test_accuracy - 0.5).abs() < 0.08, "{p:?}");

    assert!(analysis::linear_probe(&xtr, &[0; 3], &xte, &[0; 1000], 2, 1, 0.1).is_err());
}

/// `n` 2×2 images, labels 0..3, spread over more than one evaluation batch.
fn small_dataset(n: usize) -> Dataset {
    let images: Vec<u8> = pseudo_random(n * 4, 40)
        .iter()
        .map(|v| ((v + 1.0) * 127.0) as u8)
        .collect();
    let labels = (0..n).map(|i| (i * 5 % 3) as u8).collect();
    Dataset::from_raw(images, labels, 2, 2).unwrap()
}

fn sigmoid_model() -> ContractiveAutoencoder {
    one_layer(
        2,
        2,
        3,
        &pseudo_random(12, 41),
        &pseudo_random(3, 42),
        Activation::Sigmoid,
    )
}

#[test]
fn per_class_bce_weights_add_up_to_the_overall_bce() {
    let data = small_dataset(2500);
    let model = sigmoid_model();
    let (report, fro) = analysis::reconstruction_by_class(&model, &data, &DEV).unwrap();
    assert_eq!(
        report.per_class.iter().map(|c| c.0).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(report.per_class.iter().map(|c| c.1).sum::<usize>(), 2500);
    let weighted: f64 = report
        .per_class
        .iter()
        .map(|&(_, n, b)| n as f64 * b)
        .sum::<f64>()
        / 2500.0;
    assert_close(weighted, report.overall, 1e-12, "weighted per-class BCE");
    // The classes differ, and the overall BCE is the trainer's evaluation.
    assert!(report.per_class[0].2 != report.per_class[1].2);
    let eval = cae_train::evaluate(&model, &data, 128, &DEV).unwrap();
    // One computation (`sample_bce`, summed in f64) in other batch sizes: the same figure.
    assert_close(
        report.overall,
        eval.reconstruction,
        1e-7,
        "against evaluate()",
    );
    assert_close(
        fro,
        eval.jacobian_frobenius,
        1e-5,
        "‖J‖_F against evaluate()",
    );
}

#[test]
fn report_table_and_plots_compare_models() {
    let train = small_dataset(300);
    let test = small_dataset(120);
    let opts = EvalOptions {
        contraction_points: 20,
        radii: vec![0.01, 0.1, 1.0],
        samples_per_point: 2,
        spectrum_points: 10,
        spectrum_k: 3,
        probe_epochs: 2,
        probe_lr: 0.1,
        seed: 3,
    };
    let cae = analysis::analyse(&sigmoid_model(), Some(&train), &test, &opts, &DEV).unwrap();
    let lin = one_layer(
        2,
        2,
        3,
        &with_singular_values(3, &[3.0, 1.0, 0.5]),
        &[0.0; 3],
        Activation::Identity,
    );
    let plain = analysis::analyse(&lin, None, &test, &opts, &DEV).unwrap();
    assert_eq!(cae.samples, 120);
    assert_eq!(cae.contraction.len(), 3);
    assert_eq!(cae.spectrum.len(), 3);
    assert!(cae.saturation.is_some() && cae.probe.is_some());
    assert!(plain.saturation.is_none() && plain.probe.is_none());

    let json = serde_json::to_string(&cae).unwrap();
    let back: analysis::EvalReport = serde_json::from_str(&json).unwrap();
    assert_eq!(back, cae);

    let table = analysis::render_table(&[("cae", &cae), ("linear", &plain)]);
    let header = table.lines().next().unwrap();
    assert!(
        header.starts_with("metric") && header.contains("cae") && header.contains("linear"),
        "{table}"
    );
    for row in [
        "BCE per pixel",
        "contraction r=0.1",
        "σ_3",
        "BCE class 2",
        "probe test acc",
    ] {
        assert!(
            table.lines().any(|l| l.starts_with(row)),
            "no {row} in\n{table}"
        );
    }
    let sigma1 = table.lines().find(|l| l.starts_with("σ_1")).unwrap();
    assert!(sigma1.ends_with("3.0000"), "{sigma1}");

    let dir = tempfile::tempdir().unwrap();
    let curves = dir.path().join("contraction.png");
    analysis::plot_contraction_curves(
        &[
            ("cae", cae.contraction.as_slice()),
            ("linear", plain.contraction.as_slice()),
        ],
        &curves,
        "contraction",
    )
    .unwrap();
    let spectra = dir.path().join("spectrum.png");
    analysis::plot_spectra(
        &[
            ("cae", cae.spectrum.as_slice()),
            ("linear", plain.spectrum.as_slice()),
        ],
        &spectra,
        "spectrum",
    )
    .unwrap();
    for path in [&curves, &spectra] {
        let img = image::open(path).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), analysis::ANALYSIS_PLOT_SIZE);
        let coloured = img
            .pixels()
            .filter(|p| p[0].abs_diff(p[1]) > 60 || p[1].abs_diff(p[2]) > 60)
            .count();
        assert!(coloured > 200, "{path:?}: {coloured} coloured pixels");
    }
    let err = analysis::plot_spectra(&[("none", &[0.0][..])], &spectra, "x");
    assert!(err.is_err());

    let tangents = dir.path().join("tangents.png");
    let x = test.to_tensor(0..1, &DEV).unwrap();
    let t = analysis::leading_tangents(&lin, &x, 3).unwrap();
    analysis::save_tangent_grid(&[t.clone(), t], 2, 2, 4, &tangents).unwrap();
    assert!(image::open(&tangents).is_ok());
}

#[test]
fn pixel_probe_and_dataset_codes() {
    // Class c lights pixel c of a 2×2 image: separable on the raw pixels.
    let make = |n: usize, seed| {
        let noise = pseudo_random(n * 4, seed);
        let labels: Vec<u8> = (0..n).map(|i| (i * 3 % 4) as u8).collect();
        let images = (0..n * 4)
            .map(|k| {
                let lit = k % 4 == labels[k / 4] as usize;
                ((noise[k] + 1.0) * 25.0) as u8 + if lit { 200 } else { 0 }
            })
            .collect();
        Dataset::from_raw(images, labels, 2, 2).unwrap()
    };
    let (train, test) = (make(400, 50), make(200, 51));
    let p = analysis::probe_pixels(&train, &test, 10, 0.5, &DEV).unwrap();
    assert!(p.test_accuracy >= 0.95, "{p:?}");

    let model = sigmoid_model();
    let codes = analysis::encode_dataset(&model, &small_dataset(2100), &DEV).unwrap();
    assert_eq!(codes.dims(), &[2100, 3]);
    let direct = model
        .encode(&small_dataset(2100).to_tensor(2000..2100, &DEV).unwrap())
        .unwrap();
    let diff = (codes.narrow(0, 2000, 100).unwrap() - direct)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(diff, 0.0);
    let p = analysis::probe_codes(&model, &train, &test, 2, 0.1, &DEV).unwrap();
    assert!((0.0..=1.0).contains(&p.test_accuracy));

    // Bad arguments are errors, not panics.
    let x = points(3, 4, 1);
    assert!(analysis::contraction_curve(&model, &x, &[0.0], 1, 0).is_err());
    assert!(analysis::contraction_curve(&model, &x, &[0.1], 0, 0).is_err());
    assert!(analysis::singular_value_spectrum(&model, &x, 0).is_err());
    assert!(analysis::leading_tangents(&model, &x, 1).is_err());
}
