//! `cae-cli train --resume` end to end: the saved configuration is the truth, overrides are
//! explicit and recorded, a run directory has one writer, and runs that died early continue.
use std::path::Path;
use std::process::{Command, Stdio};

use crate::helpers::{cli, deterministic_metrics, files_in, s, stderr, BIN};

/// Trains `epochs` epochs of the small preset on `data` into `run`, with extra flags.
fn train(data: &Path, run: &Path, epochs: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--preset",
        "small",
        "--dataset",
        s(data),
        "--epochs",
        epochs,
        "--batch-size",
        "25",
        "--device",
        "cpu",
        "--offline",
        "--out",
        s(run),
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

fn resume(run: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["train", "--resume", s(run), "--device", "cpu", "--offline"];
    args.extend_from_slice(extra);
    cli(&args)
}

fn config(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap()
}

#[test]
fn resume_trains_on_the_saved_dataset_and_refuses_conflicting_flags() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    crate::helpers::write_dataset(&a, 50, 10, 1);
    crate::helpers::write_dataset(&b, 50, 10, 2);
    let (run, straight) = (dir.path().join("run"), dir.path().join("straight"));
    assert!(train(&a, &straight, "2", &[]).status.success());
    let out = train(&a, &run, "1", &[]);
    assert!(out.status.success(), "{}", stderr(&out));

    // Another dataset, preset or batch size: refused, naming the saved value; nothing changes.
    let before = std::fs::read(run.join("metrics.jsonl")).unwrap();
    for (flags, saved) in [
        (
            vec!["--dataset", s(&b)],
            a.canonicalize().unwrap().display().to_string(),
        ),
        (vec!["--preset", "deep"], "`small`".to_string()),
        (vec!["--batch-size", "10"], "25".to_string()),
        (vec!["--lambda", "0.5"], "0.0001".to_string()),
    ] {
        let out = resume(&run, &flags);
        assert!(!out.status.success(), "{flags:?} accepted");
        let err = stderr(&out);
        assert!(
            err.contains(flags[0]) && err.contains(&saved),
            "{flags:?}: {err}"
        );
        assert_eq!(std::fs::read(run.join("metrics.jsonl")).unwrap(), before);
    }
    // The same values as saved are fine; with no --dataset it trains on the saved one, `a`.
    let out = resume(&run, &["--epochs", "2", "--batch-size", "25"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        deterministic_metrics(&run),
        deterministic_metrics(&straight)
    );
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        std::fs::read(straight.join("model.safetensors")).unwrap()
    );
    let overrides = &config(&run)["overrides"];
    assert_eq!(overrides[0]["setting"], "epochs", "{overrides}");
    assert_eq!(
        (overrides[0]["from"].as_u64(), overrides[0]["to"].as_u64()),
        (Some(1), Some(2))
    );
}

#[test]
fn epochs_on_resume_is_the_new_total_even_when_it_is_the_default() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    crate::helpers::write_dataset(&data, 25, 5, 3);
    assert!(train(&data, &run, "1", &[]).status.success());
    let out = resume(&run, &["--epochs", "20"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(deterministic_metrics(&run).len(), 20);
    assert_eq!(config(&run)["train"]["epochs"], 20);
    // Fewer epochs than trained is refused.
    let out = resume(&run, &["--epochs", "3"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("20"), "{}", stderr(&out));
}

#[test]
fn a_new_learning_rate_is_recorded_in_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    crate::helpers::write_dataset(&data, 25, 5, 4);
    assert!(train(&data, &run, "1", &["--lr", "0.01"]).status.success());
    let out = resume(&run, &["--epochs", "2", "--lr", "0.002"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let cfg = config(&run);
    assert_eq!(cfg["train"]["learning_rate"], 0.002);
    let lr = cfg["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["setting"] == "learning_rate")
        .expect("the learning-rate change is recorded")
        .clone();
    assert_eq!(
        (lr["from"].as_f64(), lr["to"].as_f64()),
        (Some(0.01), Some(0.002))
    );
    assert_eq!(
        (lr["at_epoch"].as_u64(), lr["at_batch"].as_u64()),
        (Some(2), Some(0))
    );
    let metrics = deterministic_metrics(&run);
    assert_eq!(metrics[1]["learning_rate"], 0.002);
}

#[test]
fn a_wrong_resume_path_fails_before_the_data_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let data_root = dir.path().join("cache");
    std::fs::create_dir(&data_root).unwrap();
    let missing = dir.path().join("no-such-run");
    // Not --offline: with the old order this would try to download MNIST before the path check.
    let out = cli(&[
        "train",
        "--resume",
        s(&missing),
        "--data-dir",
        s(&data_root),
        "--device",
        "cpu",
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("no-such-run") && err.contains("does not exist"),
        "{err}"
    );
    assert!(!err.to_lowercase().contains("download"), "{err}");
    assert!(files_in(&data_root).is_empty());
}

#[test]
fn a_run_that_died_before_its_first_checkpoint_resumes_from_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::helpers::write_dataset(&data, 50, 10, 5);
    let (run, straight) = (dir.path().join("run"), dir.path().join("straight"));
    assert!(train(&data, &straight, "1", &[]).status.success());
    // What a run killed in epoch 1 leaves: its configuration, and a half-written checkpoint.
    assert!(train(&data, &run, "1", &[]).status.success());
    for name in files_in(&run) {
        if name != "config.json" {
            let p = run.join(&name);
            if p.is_dir() {
                std::fs::remove_dir_all(p).unwrap();
            } else {
                std::fs::remove_file(p).unwrap();
            }
        }
    }
    std::fs::create_dir(run.join(".checkpoint-000001.999.0.tmp")).unwrap();
    std::fs::write(
        run.join(".checkpoint-000001.999.0.tmp/model.safetensors"),
        b"half",
    )
    .unwrap();
    // --out refuses it (it has a configuration) and says how to continue.
    let out = train(&data, &run, "1", &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--resume"), "{}", stderr(&out));
    let out = resume(&run, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(files_in(&run), files_in(&straight));
    assert_eq!(
        deterministic_metrics(&run),
        deterministic_metrics(&straight)
    );
    assert_eq!(
        std::fs::read(run.join("model.safetensors")).unwrap(),
        std::fs::read(straight.join("model.safetensors")).unwrap()
    );
}

#[test]
fn a_second_writer_of_a_run_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    crate::helpers::write_dataset(&data, 25, 5, 6);
    assert!(train(&data, &run, "1", &[]).status.success());
    // A first writer, slowed down so that it is still running when the second starts.
    let mut first = Command::new(BIN)
        .args([
            "-v",
            "train",
            "--resume",
            s(&run),
            "--epochs",
            "3",
            "--device",
            "cpu",
            "--offline",
        ])
        .env("CAE_TEST_SLOW_CHECKPOINT_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until it holds the lock: its first line comes after it took the run directory.
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(first.stderr.take().unwrap()));
    assert!(lines.any(|l| l.unwrap().contains("training")));
    let second = resume(&run, &["--epochs", "3"]);
    assert!(!second.status.success(), "two writers at once");
    assert!(
        stderr(&second).contains("another process"),
        "{}",
        stderr(&second)
    );
    for _ in lines {}
    assert!(first.wait().unwrap().success());
    assert_eq!(deterministic_metrics(&run).len(), 3);
}

#[test]
fn out_naming_a_file_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (data, file) = (dir.path().join("data"), dir.path().join("file"));
    crate::helpers::write_dataset(&data, 25, 5, 7);
    std::fs::write(&file, "mine").unwrap();
    let out = train(&data, &file, "1", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("not a directory") && !err.contains("already has files"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"mine");
}

#[test]
fn logs_have_no_colour_codes_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    crate::helpers::write_dataset(&data, 25, 5, 8);
    let out = train(&data, &run, "1", &[]);
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("epoch"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn a_diverging_run_fails_and_keeps_only_finite_models() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run) = (dir.path().join("data"), dir.path().join("run"));
    crate::helpers::write_dataset(&data, 50, 10, 9);
    let out = train(&data, &run, "3", &["--lr", "1e30"]);
    assert!(!out.status.success(), "a diverging run exited 0");
    let err = stderr(&out);
    assert!(err.contains("--lr"), "the CLI adds the hint: {err}");
    // Whatever was kept loads: model files with non-finite weights are refused on reading.
    for name in ["model.safetensors", "best.safetensors"] {
        let path = run.join(name);
        if path.exists() {
            if let Err(e) = cae_core::read_model(&path, &candle_core::Device::Cpu) {
                panic!("{name} was kept but does not load: {e}");
            }
        }
    }
}

#[test]
fn the_cli_adds_the_data_dir_hint_to_the_librarys_facts() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(&[
        "train",
        "--offline",
        "--data-dir",
        s(dir.path()),
        "--out",
        s(&dir.path().join("run")),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("CAE_DATA_DIR") && err.contains("--data-dir"),
        "{err}"
    );
}
