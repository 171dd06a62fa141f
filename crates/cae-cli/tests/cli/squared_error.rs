//! `train --loss mse` on real-valued data: the standardisation fitted on the training split and
//! stored in config.json and the model file, metrics named after the loss, a model that learns,
//! and a resume that keeps the loss and the code width (`--code-dim`).

use std::path::Path;

use crate::helpers::{cli, s, stderr};

/// Sensor-like readings far outside [0, 1]: two features driven by one hidden variable (one in the
/// hundreds, one of a tenth of that spread around −5) and a constant column, labelled.
fn write_readings(path: &Path, rows: usize) {
    let mut text = String::from("temperature,pressure,unit,kind\n");
    for i in 0..rows {
        let t = ((i * 37) % 101) as f64 / 100.0;
        text.push_str(&format!(
            "{},{},3.0,{}\n",
            100.0 + 20.0 * t,
            -5.0 + 2.0 * t * t,
            i % 2
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn train(csv: &Path, run: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--dataset",
        s(csv),
        "--label-column",
        "kind",
        "--out",
        s(run),
        "--preset",
        "small",
        "--batch-size",
        "20",
        "--lr",
        "0.01",
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

fn column(csv_text: &str, name: &str) -> Vec<f64> {
    let mut lines = csv_text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let k = header.iter().position(|h| *h == name).unwrap();
    lines
        .map(|l| l.split(',').nth(k).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn mse_run_on_real_values_stores_its_standardisation_learns_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("readings.csv");
    write_readings(&csv, 200);
    let run = tmp.path().join("run");
    let out = train(
        &csv,
        &run,
        &[
            "--loss",
            "mse",
            "--code-dim",
            "4",
            "--test-fraction",
            "0.2",
            "--epochs",
            "12",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));

    // The standardisation is fitted on the 160 training rows: means near the columns' (120, −4.3, 3)
    // and spreads near theirs; the constant column keeps scale 1.
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["loss"], "mse");
    assert_eq!(config["model"]["architecture"]["code_dim"], 4);
    let mean: Vec<f64> =
        serde_json::from_value(config["model"]["standardisation"]["mean"].clone()).unwrap();
    let scale: Vec<f64> =
        serde_json::from_value(config["model"]["standardisation"]["scale"].clone()).unwrap();
    assert!((mean[0] - 110.0).abs() < 2.0, "{mean:?}");
    assert!((mean[1] + 4.33).abs() < 0.2, "{mean:?}");
    assert_eq!(mean[2], 3.0);
    assert!((scale[0] - 5.8).abs() < 0.6, "{scale:?}");
    assert_eq!(scale[2], 1.0);

    // The model file carries it, so every command standardises as training did.
    let model =
        cae_core::read_model(&run.join("model.safetensors"), &candle_core::Device::Cpu).unwrap();
    assert_eq!(model.config.standardisation.as_ref().unwrap().mean, mean);

    // Metrics are named after the loss, and the model learnt: the test MSE (in standard units,
    // where predicting the mean scores about 2/3 here) fell well below its first epoch's.
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert!(metrics.starts_with("epoch,train_mse,"), "{metrics}");
    let test = column(&metrics, "test_mse");
    assert_eq!(test.len(), 12);
    assert!(test[11] < 0.5 * test[0], "test MSE by epoch: {test:?}");
    let jsonl = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    assert!(
        jsonl.contains("\"test_mse\":") && !jsonl.contains("bce"),
        "{jsonl}"
    );

    // A resume keeps the loss: another one is refused naming the saved one, the same is fine.
    let resume = |extra: &[&str]| {
        let mut args = vec!["train", "--resume", s(&run), "--device", "cpu"];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let out = resume(&["--loss", "bce", "--code-dim", "5", "--epochs", "13"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--loss bce (the run's is mse)"), "{err}");
    assert!(err.contains("--code-dim 5 (the run's is 4)"), "{err}");
    let out = resume(&["--preset", "deep", "--epochs", "13"]);
    let err = stderr(&out);
    assert!(
        err.contains("(the run's is `wide` or `small` with --code-dim 4)"),
        "{err}"
    );
    let same = ["--loss", "mse", "--code-dim", "4", "--preset", "small"];
    let out = resume(&[&same[..], &["--epochs", "13"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(column(&metrics, "test_mse").len(), 13);
}

#[test]
fn real_values_under_bce_point_to_the_squared_error() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("readings.csv");
    write_readings(&csv, 20);
    let run = tmp.path().join("run");
    let out = train(&csv, &run, &["--test-fraction", "0.2", "--epochs", "1"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("readings.csv") && err.contains("--loss mse"),
        "{err}"
    );
    assert!(!run.exists());
}

#[test]
fn code_dim_of_a_conv_preset_is_refused_before_any_data_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let run = tmp.path().join("run");
    let out = cli(&[
        "train",
        "--preset",
        "conv",
        "--code-dim",
        "4",
        "--dataset",
        s(&tmp.path().join("missing")),
        "--out",
        s(&run),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("--code-dim applies to MLP presets"), "{err}");
    assert!(!run.exists());
}
