//! The papers' pipeline through the binary, on an IDX dataset generated here: pretrain a CAE,
//! stack a CAE+H layer on it (`train --stack-on`), measure the stack (`eval`), fine-tune it into a
//! classifier (`finetune`), classify an image (`classify`) and measure the classifier (`eval`).
use crate::helpers::{cli, s, stderr, write_dataset};

fn run(args: &[&str]) -> String {
    let out = cli(args);
    assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn pretrain_stack_finetune_classify_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let p = |name: &str| dir.path().join(name);
    let data = p("data");
    write_dataset(&data, 400, 100, 1);
    let d = s(&data);
    let common = ["-q", "--dataset", d, "--batch-size", "50"];
    run(&[
        &["train"][..],
        &common,
        &["--preset", "small", "--epochs", "2", "--out", s(&p("cae1"))],
    ]
    .concat());
    run(&[
        &["train"][..],
        &common,
        &[
            "--stack-on",
            s(&p("cae1")),
            "--code-dim",
            "32",
            "--epochs",
            "2",
            "--out",
            s(&p("cae2")),
        ],
        &["--hessian-gamma", "0.1", "--hessian-copies", "1"],
    ]
    .concat());
    let stacked = p("cae2").join("model.safetensors");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(p("cae2").join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config["train"]["hessian"]["copies"], 1);

    let eval: serde_json::Value = serde_json::from_str(&run(&[
        "eval",
        "-q",
        "--dataset",
        d,
        "--weights",
        s(&stacked),
        "--no-probe",
        "--json",
        "--spectrum-points",
        "5",
        "--contraction-points",
        "10",
    ]))
    .unwrap();
    let report = &eval["models"][0]["report"];
    assert_eq!(report["spectrum"].as_array().unwrap().len(), 32);
    let signature = &report["spectrum_signature"];
    assert!(
        signature["effective_rank"].as_f64().unwrap() > 1.0,
        "{signature}"
    );
    assert_eq!(signature["ratios"].as_array().unwrap().len(), 3);

    let clf = p("classifier.safetensors");
    // Every fine-tuning run below starts from the stacked model on the same data.
    let finetune_stacked = ["finetune", "-q", "--dataset", d, "--weights", s(&stacked)];
    let finetune = [
        &finetune_stacked[..],
        &[
            "--validation",
            "100",
            "--epochs",
            "30",
            "--patience",
            "30",
            "--lr",
            "0.01",
            "--batch-size",
            "25",
            "--input-dropout",
            "0.1",
            "--dropout",
            "0.2",
            "--hidden-dropout",
            "0.3",
            "--weight-decay",
            "0.01",
            "--out",
            s(&clf),
        ],
    ]
    .concat();
    let done = run(&finetune);
    assert!(done.contains("test error 0.00%"), "{done}");
    // Nothing is overwritten.
    let again = cli(&finetune);
    assert!(!again.status.success() && stderr(&again).contains("already exists"));
    // The fine-tuning settings travel in the classifier file.
    let loaded = cae_core::read_classifier(&clf, &candle_core::Device::Cpu).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&loaded.metadata[cae_train::FINETUNE_KEY]).unwrap();
    assert_eq!(
        saved["dropout"],
        serde_json::json!({"input": 0.1, "hidden": 0.3, "code": 0.2})
    );
    assert_eq!(saved["adam"]["weight_decay"], 0.01);
    assert_eq!(saved["optimizer"], "adam");
    // Without a split (the final run on all the data) every epoch runs and the last is kept;
    // this one steps with SGD.
    let all = p("all-data.safetensors");
    let no_split = [
        &finetune_stacked[..],
        &[
            "--validation",
            "0",
            "--epochs",
            "3",
            "--patience",
            "1",
            "--sgd-momentum",
            "0.9",
            "--lr",
            "0.1",
            "--out",
            s(&all),
        ],
    ]
    .concat();
    let done = run(&no_split);
    assert!(
        done.contains("kept epoch 3 of 3 (validation error none)"),
        "{done}"
    );
    let loaded = cae_core::read_classifier(&all, &candle_core::Device::Cpu).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&loaded.metadata[cae_train::FINETUNE_KEY]).unwrap();
    assert_eq!(
        saved["optimizer"],
        serde_json::json!({"sgd": {"momentum": 0.9}})
    );
    // A dropout probability of 1 would drop every unit: refused before any work, nothing written.
    let refused = p("refused.safetensors");
    let bad = cli(&[
        &finetune_stacked[..],
        &["--dropout", "1", "--out", s(&refused)],
    ]
    .concat());
    assert!(
        !bad.status.success()
            && stderr(&bad).contains("code dropout probability must be in [0, 1)"),
        "{}",
        stderr(&bad)
    );
    assert!(!refused.exists());
    // So would a momentum of 1, whose velocity never decays.
    let bad = cli(&[
        &finetune_stacked[..],
        &["--sgd-momentum", "1", "--out", s(&refused)],
    ]
    .concat());
    assert!(
        !bad.status.success() && stderr(&bad).contains("momentum in [0, 1)"),
        "{}",
        stderr(&bad)
    );
    assert!(!refused.exists());

    let eval = run(&["eval", "-q", "--dataset", d, "--weights", s(&clf)]);
    assert!(eval.contains("test error 0.00% (100 images)"), "{eval}");

    // A digit image: a vertical bar, as a white-on-black PNG.
    let png = p("three.png");
    let img = image::GrayImage::from_fn(28, 28, |x, y| {
        image::Luma([if (8..10).contains(&x) && (4..24).contains(&y) {
            255
        } else {
            0
        }])
    });
    img.save(&png).unwrap();
    let line = run(&["classify", "--weights", s(&clf), "--input", s(&png)]);
    assert!(line.starts_with(&format!("{}: ", png.display())), "{line}");
    assert_eq!(
        line.matches(": 0.").count() + line.matches(": 1.").count(),
        4, // one probability per class of the dataset
        "{line}"
    );

    // A plain model is not a classifier.
    let bad = cli(&["classify", "--weights", s(&stacked), "--input", s(&png)]);
    assert!(
        !bad.status.success() && stderr(&bad).contains("cae.classifier"),
        "{}",
        stderr(&bad)
    );
}
