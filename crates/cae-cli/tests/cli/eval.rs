//! End-to-end test of `cae-cli train` and `cae-cli eval` on an IDX dataset generated here:
//! a CAE and a plain autoencoder (λ = 0) are trained, then compared side by side.
use std::path::Path;

use crate::helpers::{cli, s, stderr};

fn write_idx(path: &Path, magic: u32, dims: &[u32], data: &[u8]) {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// `n` images of `side`×`side`: class `c` is a noisy vertical bar at column `2 + 2c` (so the
/// classes are linearly separable), labels cycling through 0..10.
fn images(n: usize, side: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut pixels = vec![0u8; n * side * side];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 10;
        labels.push(class as u8);
        let image = &mut pixels[i * side * side..(i + 1) * side * side];
        let col = (2 + 2 * class).min(side - 2);
        for row in side / 7..side - side / 7 {
            for dc in 0..2 {
                image[row * side + col + dc] = 180 + (next() % 76) as u8;
            }
        }
        for p in image.iter_mut() {
            if next() % 20 == 0 {
                *p = p.saturating_add((next() % 120) as u8);
            }
        }
    }
    (pixels, labels)
}

/// An MNIST-layout IDX directory with `train` and `test` images of `side`×`side`.
fn write_dataset(dir: &Path, side: usize, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n, seed) in [("train", train, 1), ("t10k", test, 2)] {
        let (pixels, labels) = images(n, side, seed);
        let side = side as u32;
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            0x0803,
            &[n as u32, side, side],
            &pixels,
        );
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            0x0801,
            &[n as u32],
            &labels,
        );
    }
}

fn train(data: &Path, out: &Path, lambda: &str) {
    let result = cli(&[
        "train",
        "-q",
        "--dataset",
        s(data),
        "--preset",
        "small",
        "--epochs",
        "4",
        "--batch-size",
        "50",
        "--lambda",
        lambda,
        "--out",
        s(out),
    ]);
    assert!(result.status.success(), "train: {}", stderr(&result));
    assert!(out.join("model.safetensors").is_file());
}

fn assert_png(path: &Path) {
    let img = image::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        img.width() > 100 && img.height() > 100,
        "{}",
        path.display()
    );
}

#[test]
fn eval_compares_a_cae_with_a_plain_autoencoder_and_writes_plots() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_dataset(&data, 28, 400, 100);
    let cae = dir.path().join("cae");
    let ae = dir.path().join("ae");
    train(&data, &cae, "0.1");
    train(&data, &ae, "0");

    let plots = dir.path().join("plots");
    let out = cli(&[
        "eval",
        "-q",
        "--dataset",
        s(&data),
        "--weights",
        s(&cae.join("model.safetensors")),
        "--weights",
        s(&ae.join("model.safetensors")),
        "--probe-epochs",
        "20",
        "--contraction-points",
        "50",
        "--spectrum-points",
        "10",
        "--radii",
        "0.001,0.1,1",
        "--tangent-digits",
        "3",
        "--tangents",
        "4",
        "--json",
        "--plots",
        s(&plots),
    ]);
    assert!(out.status.success(), "eval: {}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    assert_eq!(models[0]["name"], "cae");
    assert_eq!(models[1]["name"], "ae");
    let metric = |m: &serde_json::Value, key: &str| m["report"][key].as_f64().unwrap();

    // The penalty acts: the CAE's encoder contracts more than the unpenalised one.
    let (j_cae, j_ae) = (
        metric(&models[0], "mean_jacobian_frobenius"),
        metric(&models[1], "mean_jacobian_frobenius"),
    );
    assert!(j_cae < 0.7 * j_ae, "‖J‖_F: CAE {j_cae}, AE {j_ae}");

    for m in models {
        assert_eq!(m["report"]["samples"], 100);
        let bce = m["report"]["reconstruction"]["overall"].as_f64().unwrap();
        assert!(bce.is_finite() && bce > 0.0 && bce < 0.7, "{bce}");
        assert_eq!(
            m["report"]["reconstruction"]["per_class"]
                .as_array()
                .unwrap()
                .len(),
            10
        );
        // At a tiny radius the ratio estimates ‖J u‖ for random unit u, whose mean square is
        // ‖J‖_F² / input: the mean ratio cannot exceed ‖J‖_F / √784 (Jensen) by more than noise.
        let curve = m["report"]["contraction"].as_array().unwrap();
        assert_eq!(curve.len(), 3);
        let tiny = curve[0][1].as_f64().unwrap();
        let j = metric(m, "mean_jacobian_frobenius");
        assert!(
            tiny > 0.0 && tiny < 1.1 * j / 28.0,
            "ratio {tiny}, ‖J‖_F {j}"
        );
        let spectrum: Vec<f64> = m["report"]["spectrum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert!(spectrum.windows(2).all(|w| w[0] >= w[1]), "{spectrum:?}");
        let sat = metric(m, "saturation");
        assert!((0.0..=1.0).contains(&sat));
        // The classes are linearly separable in pixel space and the codes keep that.
        let acc = m["report"]["probe"]["test_accuracy"].as_f64().unwrap();
        assert!(acc > 0.9, "probe accuracy {acc}");
    }
    // Training's last test BCE, as metrics.csv and metrics.jsonl hold it, is eval's figure for
    // the same model (model.safetensors is the last epoch's): both are summed in f64.
    let eval_bce = models[0]["report"]["reconstruction"]["overall"]
        .as_f64()
        .unwrap();
    let csv = std::fs::read_to_string(cae.join("metrics.csv")).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|h| *h == "test_bce").unwrap();
    let csv_bce: f64 = csv
        .lines()
        .last()
        .unwrap()
        .split(',')
        .nth(column)
        .unwrap()
        .parse()
        .unwrap();
    let jsonl = std::fs::read_to_string(cae.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(jsonl.lines().last().unwrap()).unwrap();
    let jsonl_bce = last["test_bce"].as_f64().unwrap();
    for (file, logged) in [("metrics.csv", csv_bce), ("metrics.jsonl", jsonl_bce)] {
        assert!(
            (logged - eval_bce).abs() <= 1e-7 * eval_bce,
            "{file}: test BCE {logged}, eval {eval_bce}"
        );
    }

    let pixels = report["pixel_probe"]["test_accuracy"].as_f64().unwrap();
    assert!(pixels > 0.9, "pixel probe accuracy {pixels}");

    for file in [
        "contraction.png",
        "spectrum.png",
        "tangents-cae.png",
        "tangents-ae.png",
    ] {
        assert_png(&plots.join(file));
    }
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(plots.join("eval.json")).unwrap()).unwrap();
    assert_eq!(written, report);

    // The human table names both models and the pixel baseline.
    let out = cli(&[
        "eval",
        "-q",
        "--dataset",
        s(&data),
        "--weights",
        s(&cae.join("model.safetensors")),
        "--weights",
        s(&ae.join("model.safetensors")),
        "--no-probe",
        "--contraction-points",
        "10",
        "--spectrum-points",
        "5",
    ]);
    assert!(out.status.success(), "eval: {}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    let header = table.lines().next().unwrap();
    assert!(header.contains("cae") && header.contains("ae"), "{table}");
    assert!(table.contains("mean ‖J‖_F"), "{table}");
    assert!(
        !table.contains("raw inputs"),
        "--no-probe ran a probe: {table}"
    );
}

#[test]
fn eval_refuses_a_model_for_another_image_size() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    write_dataset(&data, 14, 20, 20);
    let out = cli(&["eval", "-q", "--dataset", s(&data), "--no-probe"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("784") && err.contains("196"), "{err}");
}

#[test]
fn eval_rejects_bad_settings_before_reading_data() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dataset");
    for (bad, expect) in [
        (&["--radii", "0,1"][..], "--radii"),
        (&["--test-limit", "0"][..], "--test-limit"),
        (&["--spectrum-points", "0"][..], "--spectrum-points"),
    ] {
        let mut args = vec!["eval", "--dataset", s(&missing), "--offline"];
        args.extend_from_slice(bad);
        let out = cli(&args);
        assert!(!out.status.success(), "{bad:?} succeeded");
        assert!(stderr(&out).contains(expect), "{bad:?}: {}", stderr(&out));
    }
    let not_a_model = dir.path().join("model.safetensors");
    std::fs::write(&not_a_model, "not a model").unwrap();
    let out = cli(&[
        "eval",
        "--dataset",
        s(&missing),
        "--weights",
        s(&not_a_model),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains(s(&not_a_model)), "{}", stderr(&out));
}
