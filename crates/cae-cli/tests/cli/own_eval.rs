//! `eval --dataset` and `finetune --dataset` on one's own data: a PNG class folder split by a
//! seeded fraction, measured with probes and tangent pictures; a CSV table without labels,
//! measured with the probes and the pictures skipped, each said in a log line; a model of another
//! width refused; fine-tuning on a labelled table, and refused without labels or with a
//! validation split as large as the data; a layer stacked on a model of a table (`train
//! --stack-on`), its reading and split flags recorded, and a base of another width refused.

use crate::helpers::{cli, s, stderr, stdout};
use crate::own_data::{train, write_png_folder};
use crate::tables::{trained_model, training_rows, write_csv};

/// `eval`'s quick settings, after `args`.
fn eval(args: &[&str]) -> std::process::Output {
    let mut all = vec!["eval", "--device", "cpu", "--spectrum-points", "4"];
    all.extend_from_slice(args);
    all.extend(["--contraction-points", "4", "--probe-epochs", "5"]);
    cli(&all)
}

#[test]
fn evaluates_a_model_on_its_png_folder_with_probes_and_tangents() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("pngs"), tmp.path().join("run"));
    write_png_folder(&data, 8);
    let out = train(&data, &run, &["--test-fraction", "0.25", "--seed", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plots = tmp.path().join("plots");
    let model = run.join("model.safetensors");
    let out = eval(&[
        "--weights",
        s(&model),
        "--dataset",
        s(&data),
        "--test-fraction",
        "0.25",
        "--seed",
        "3",
        "--plots",
        s(&plots),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let m = &report["models"][0]["report"];
    assert_eq!(m["samples"], 4);
    assert!(m["probe"]["test_accuracy"].as_f64().is_some(), "{m}");
    assert!(report["pixel_probe"]["test_accuracy"].as_f64().is_some());
    assert!(plots.join("tangents-run.png").is_file());
    // The run's own test figure: the same held-out images as training measured.
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let last: serde_json::Value = serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
    let (logged, measured) = (
        last["test_bce"].as_f64().unwrap(),
        m["reconstruction"]["overall"].as_f64().unwrap(),
    );
    assert!(
        (logged - measured).abs() <= 1e-6 * logged,
        "{logged} vs {measured}"
    );
}

#[test]
fn evaluates_an_unlabelled_table_skipping_probes_and_pictures_and_refuses_other_widths() {
    let tmp = tempfile::tempdir().unwrap();
    let model = trained_model(tmp.path());
    let table = tmp.path().join("unlabelled.csv");
    let rows: Vec<(Vec<f32>, &str)> = training_rows(20);
    write_csv(&table, &rows);
    // The label column is a column like any other without --label-column: drop it.
    let text = std::fs::read_to_string(&table).unwrap();
    let features: String = text
        .lines()
        .map(|l| format!("{}\n", &l[..l.rfind(',').unwrap()]))
        .collect();
    std::fs::write(&table, features).unwrap();
    let plots = tmp.path().join("plots");
    let out = eval(&[
        "--weights",
        s(&model),
        "--dataset",
        s(&table),
        "--test-fraction",
        "0.5",
        "--plots",
        s(&plots),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (text, log) = (stdout(&out), stderr(&out));
    assert!(text.contains("test samples"), "{text}");
    assert!(!text.contains("linear probe on the raw inputs"), "{text}");
    assert!(
        log.contains("no labels: the linear probes are skipped"),
        "{log}"
    );
    assert!(log.contains("8 features, not grey images"), "{log}");
    assert!(plots.join("spectrum.png").is_file());
    assert!(!plots.join("tangents-run.png").exists());

    let out = eval(&["--dataset", s(&table), "--test-fraction", "0.5"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("784 inputs") && err.contains("8 features"),
        "{err}"
    );
    let out = eval(&["--weights", s(&model), "--dataset", s(&table)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--test-fraction"), "{}", stderr(&out));
}

#[test]
fn finetunes_on_a_labelled_table_and_refuses_unlabelled_or_too_small_data() {
    let tmp = tempfile::tempdir().unwrap();
    let model = trained_model(tmp.path());
    let table = tmp.path().join("train.csv");
    let classifier = tmp.path().join("classifier.safetensors");
    let finetune = |extra: &[&str]| {
        let mut args = vec!["finetune", "--weights", s(&model), "--dataset", s(&table)];
        args.extend(["--test-fraction", "0.2", "--out", s(&classifier)]);
        args.extend(["--epochs", "3", "--batch-size", "16", "--device", "cpu"]);
        args.extend_from_slice(extra);
        cli(&args)
    };
    let out = finetune(&["--label-column", "kind", "--validation", "32"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // 160 rows: 32 held out for the test, 32 of the rest for validation.
    assert!(stdout(&out).contains("on 32 samples"), "{}", stdout(&out));
    assert!(classifier.is_file());
    // eval measures the classifier on the same held-out rows (the same fraction and seed).
    let mut args = vec!["eval", "--weights", s(&classifier), "--dataset", s(&table)];
    args.extend([
        "--label-column",
        "kind",
        "--test-fraction",
        "0.2",
        "--seed",
        "42",
    ]);
    let out = cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(32 images)"), "{}", stdout(&out));
    std::fs::remove_file(&classifier).unwrap();

    let out = finetune(&["--label-column", "kind"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("--validation 10000") && err.contains("128 samples"),
        "{err}"
    );
    let unlabelled = tmp.path().join("unlabelled.csv");
    std::fs::write(&unlabelled, "0.1,0.2\n0.3,0.4\n0.5,0.6\n0.7,0.8\n0.9,1.0\n").unwrap();
    let out = cli(&[
        "finetune",
        "--dataset",
        s(&unlabelled),
        "--test-fraction",
        "0.2",
        "--out",
        s(&classifier),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("needs labels"), "{}", stderr(&out));
    assert!(!classifier.exists());
}

#[test]
fn stacks_a_layer_on_a_model_of_a_table_and_refuses_a_model_of_another_width() {
    let tmp = tempfile::tempdir().unwrap();
    let model = trained_model(tmp.path());
    let table = tmp.path().join("train.csv");
    let stack = |base: &str, out: &std::path::Path| {
        cli(&[
            "train",
            "--stack-on",
            base,
            "--dataset",
            s(&table),
            "--label-column",
            "kind",
            "--test-fraction",
            "0.2",
            "--code-dim",
            "16",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--out",
            s(out),
            "--device",
            "cpu",
        ])
    };
    let run = tmp.path().join("stacked");
    let out = stack(s(&model), &run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("encoder 8 → 16"), "{}", stdout(&out));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["data"]["label_column"], "kind");
    assert_eq!(cfg["data"]["test"]["kind"], "fraction");
    let codes = tmp.path().join("codes.npy");
    let stacked = run.join("model.safetensors");
    let out = cli(&[
        "encode",
        "-i",
        s(&table),
        "--label-column",
        "kind",
        "--weights",
        s(&stacked),
        "--format",
        "npy",
        "-o",
        s(&codes),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&codes).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..128]).contains("'shape': (160, 16)"));

    let refused = tmp.path().join("refused");
    let default = crate::helpers::default_model();
    let out = stack(s(&default), &refused);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("784 inputs") && err.contains("8 features"),
        "{err}"
    );
    assert!(!refused.exists());
}
