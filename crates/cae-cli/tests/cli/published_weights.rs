//! `cargo xtask publish-weights` end to end: a run trained here is laid out as a Hub repository,
//! served from a Hub look-alike on 127.0.0.1 (`xtask::local_hub`), fetched back by
//! `fetch-weights`' code into the place `cae-cli` looks, and then used by `cae-cli reconstruct`
//! given no `--weights`. (Here rather than in xtask's tests because this is where cargo hands
//! tests the `cae-cli` binary.)

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;

use cae_core::CaeConfig;
use cae_data::{Dataset, Split};
use cae_train::{RunConfig, Silent, TrainConfig, Trainer};
use candle_core::Device;
use xtask::fetch::{fetch_weights, FetchArgs};
use xtask::publish::{publish_weights, sums_file_name, PublishOptions};

use crate::helpers::BIN;

const REPO: &str = "tester/published-cae";

/// An IDX dataset of 28×28 vertical bars, class `c` at column `4 + 2c`, labels cycling 0..10.
fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n) in [("train", 200usize), ("t10k", 60)] {
        let mut pixels = vec![0u8; n * 784];
        let labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
        for (i, image) in pixels.chunks_exact_mut(784).enumerate() {
            let column = 4 + 2 * (i % 10);
            for row in 4..24 {
                image[row * 28 + column] = 200 + (i * 7 % 56) as u8;
                image[row * 28 + column + 1] = 255;
            }
        }
        let write = |name: &str, dims: &[usize], data: &[u8]| {
            let bytes = cae_data::idx::encode_idx(dims, data).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        };
        write(
            &format!("{prefix}-images-idx3-ubyte"),
            &[n, 28, 28],
            &pixels,
        );
        write(&format!("{prefix}-labels-idx1-ubyte"), &[n], &labels);
    }
}

fn train_run(data: &Path, run_dir: &Path) {
    let run = RunConfig {
        model: CaeConfig::preset("small").unwrap(),
        train: TrainConfig {
            epochs: 2,
            batch_size: 50,
            ..TrainConfig::default()
        },
        dataset: data.display().to_string(),
        data: Default::default(),
    };
    let (train, test) = (
        Dataset::load_dir(data, Split::Train).unwrap(),
        Dataset::load_dir(data, Split::Test).unwrap(),
    );
    Trainer::new(run, run_dir, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
}

/// `cae-cli reconstruct --json -v` of `digit` with the weights directory `weights_dir`: the
/// JSON line and the log.
fn reconstruct(weights_dir: &Path, digit: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    // A fresh output directory per run: nothing is ever overwritten.
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let out_dir = digit.with_extension(format!("out{run}"));
    let out: Output = Command::new(BIN)
        .args(["-v", "reconstruct", "--json", "--device", "cpu", "--input"])
        .arg(digit)
        .arg("--output-dir")
        .arg(&out_dir)
        .args(extra)
        .env(cae_data::WEIGHTS_DIR_ENV, weights_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let json = serde_json::from_slice(&out.stdout).unwrap();
    (json, stderr)
}

/// A white "1" on black, 40×40, as a PNG file.
fn write_digit(path: &Path) {
    image::GrayImage::from_fn(40, 40, |x, y| {
        image::Luma([if (18..23).contains(&x) && (6..34).contains(&y) {
            255
        } else {
            0
        }])
    })
    .save(path)
    .unwrap();
}

#[test]
fn a_published_run_is_fetched_back_and_used_by_reconstruct() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run_dir, repo_dir) = (
        dir.path().join("data"),
        dir.path().join("run"),
        dir.path().join("repo"),
    );
    write_dataset(&data);
    train_run(&data, &run_dir);

    let options = PublishOptions {
        run_dir: run_dir.clone(),
        out_dir: repo_dir.clone(),
        repo_id: REPO.to_owned(),
        dataset: None,
        data_dir: None,
        offline: true,
        probe: true,
        force: false,
    };
    let published = publish_weights(&options).unwrap();

    // The repository's files.
    let weights = std::fs::read(run_dir.join("model.safetensors")).unwrap();
    assert_eq!(
        std::fs::read(repo_dir.join("model.safetensors")).unwrap(),
        weights
    );
    let sums = std::fs::read_to_string(repo_dir.join(sums_file_name())).unwrap();
    let sum = xtask::fetch::sha256_of_file(&repo_dir.join("model.safetensors")).unwrap();
    assert_eq!(sums, format!("{sum}  model.safetensors\n"));
    let config: RunConfig =
        serde_json::from_slice(&std::fs::read(repo_dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config.model, CaeConfig::preset("small").unwrap());
    assert!(repo_dir.join("LICENSE").is_file() && repo_dir.join("eval.json").is_file());

    // The card: the Hub's metadata block first, with the measured figures.
    let card = std::fs::read_to_string(repo_dir.join("README.md")).unwrap();
    let (front, _) = card
        .strip_prefix("---\n")
        .and_then(|rest| rest.split_once("\n---\n"))
        .expect("the card starts with a YAML block");
    for line in [
        "license: other",
        "license_link: LICENSE",
        "library_name: cae",
        "- contractive-autoencoder",
        "model-index:",
        &format!("- name: \"{REPO}\""),
        "      split: test",
    ] {
        assert!(front.contains(line), "{line:?} missing from:\n{front}");
    }
    let eval_bce = published.report.reconstruction.overall;
    let logged_bce = published.last_epoch.test_reconstruction;
    assert!(front.contains(&format!("value: {eval_bce}\n")), "{front}");
    assert!(front.contains(&format!("value: {logged_bce}\n")), "{front}");
    // The training log and the evaluation measure the same model the same way.
    assert!(
        (eval_bce - logged_bce).abs() <= 1e-7 * eval_bce,
        "{eval_bce} vs {logged_bce}"
    );
    let accuracy = published.report.probe.as_ref().unwrap().test_accuracy;
    assert!(front.contains(&format!("value: {accuracy}\n")), "{front}");

    // Publishing again over it refuses and changes nothing.
    let message = format!("{:#}", publish_weights(&options).unwrap_err());
    assert!(message.contains("--force"), "{message}");
    assert_eq!(
        std::fs::read_to_string(repo_dir.join("README.md")).unwrap(),
        card
    );

    // Fetch it back from a Hub look-alike, verified by the published sum, into the weights
    // directory the cae-cli runs below are given.
    let endpoint = xtask::local_hub::serve_dir(REPO, &repo_dir).unwrap();
    let weights_dir = dir.path().join("weights");
    let installed = weights_dir.join(cae_data::INSTALLED_WEIGHTS_FILE);
    let fetched = fetch_weights(&FetchArgs {
        repo: REPO.to_owned(),
        sha256: Some(sum.clone()),
        dest: Some(installed.clone()),
        endpoint: Some(endpoint),
        hf_cache_dir: Some(dir.path().join("hf")),
        ..FetchArgs::default()
    })
    .unwrap();
    assert_eq!(fetched, installed);
    assert_eq!(std::fs::read(&installed).unwrap(), weights);

    // `reconstruct` without --weights uses the fetched file: it says so under -v, and its
    // figures are those of the run's model, not of the built-in one.
    let digit = dir.path().join("one.png");
    write_digit(&digit);
    let (fetched, log) = reconstruct(&weights_dir, &digit, &[]);
    assert!(log.contains(&installed.display().to_string()), "{log}");
    assert!(log.contains("fetch-weights"), "{log}");
    let run_model = run_dir.join("model.safetensors");
    let (given, _) = reconstruct(
        &weights_dir,
        &digit,
        &["--weights", run_model.to_str().unwrap()],
    );
    assert_eq!(fetched["bce"], given["bce"]);
    assert_eq!(fetched["jacobian_frobenius"], given["jacobian_frobenius"]);
    let empty = dir.path().join("no-weights-here");
    let (built_in, log) = reconstruct(&empty, &digit, &[]);
    assert!(log.contains("embedded default model"), "{log}");
    assert_ne!(fetched["bce"], built_in["bce"]);
}
