//! `cargo xtask publish-weights RUN_DIR OUT_DIR`: everything a Hugging Face model repository
//! holds for one trained run, so that publishing it is one upload of OUT_DIR:
//!
//! - `model.safetensors`: the run's last model, byte for byte (its configuration is in its
//!   metadata, so `cae-cli --weights` and `cargo xtask fetch-weights` need nothing else);
//! - `model.safetensors.sha256`: its SHA-256, `sha256sum` style (what `fetch-weights --sha256`
//!   takes, and what to pin in `assets/pinned-weights.sha256`);
//! - `config.json`: the run's model and training configuration;
//! - `eval.json`: the model measured as `cae-cli eval` measures it (cae-train's
//!   [`analysis::analyse`], called here, not a child process);
//! - `README.md`: the model card, with the YAML metadata block the Hub reads (license, library,
//!   tags, datasets, and a `model-index` of the measured metrics — see [`crate::model_card`]);
//! - `LICENSE`: the project's licence, which the card's `license_link` names.
//!
//! Files are written atomically. A file of the same name already in OUT_DIR (for instance a
//! clone of the Hub repository) is replaced only with `force`.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_data::{Dataset, DatasetSource, DatasetSpec, LoadOptions, Split};
use cae_train::analysis::{self, EvalOptions, EvalReport};
use cae_train::artifacts::{read_json, write_atomic, EpochMetrics, MetricsLog};
use cae_train::{files, RunConfig};
use candle_core::{DType, Device};
use sha2::{Digest, Sha256};

use crate::fetch::DEFAULT_FILE;
use crate::model_card::{self, CardDataset};

/// What to publish and how to measure it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOptions {
    /// A run directory written by `cae-cli train`.
    pub run_dir: PathBuf,
    /// Where the repository is laid out (created if missing).
    pub out_dir: PathBuf,
    /// The Hub repository id the card names (`owner/name`).
    pub repo_id: String,
    /// Dataset to evaluate on and name in the card; `None`: the run's.
    pub dataset: Option<String>,
    /// Data root for named datasets (see [`LoadOptions::cache_dir`]).
    pub data_dir: Option<PathBuf>,
    /// Never download the dataset.
    pub offline: bool,
    /// Train the linear probes (reads the training set).
    pub probe: bool,
    /// Replace files of the same names in `out_dir`.
    pub force: bool,
}

/// What [`publish_weights`] wrote.
#[derive(Debug, Clone)]
pub struct Published {
    pub out_dir: PathBuf,
    pub repo_id: String,
    /// Every file written, in writing order.
    pub files: Vec<PathBuf>,
    /// SHA-256 of `model.safetensors`.
    pub sha256: String,
    /// The run's last logged epoch.
    pub last_epoch: EpochMetrics,
    /// The model measured on the test set.
    pub report: EvalReport,
}

/// The sums file written beside the weights.
pub fn sums_file_name() -> String {
    format!("{DEFAULT_FILE}.sha256")
}

/// Lays out the repository for `opts.run_dir` in `opts.out_dir`; see the module docs.
pub fn publish_weights(opts: &PublishOptions) -> Result<Published> {
    let run_dir = &opts.run_dir;
    let run: RunConfig = read_json(&run_dir.join(files::CONFIG)).with_context(|| {
        format!(
            "{} is not a run directory of `cae-cli train`",
            run_dir.display()
        )
    })?;
    let log = MetricsLog::read(run_dir)
        .with_context(|| format!("cannot read the metrics of the run {}", run_dir.display()))?;
    let Some(last_epoch) = log.last().cloned() else {
        bail!(
            "{}: the run has no finished epoch to publish",
            run_dir.display()
        );
    };
    let model_path = run_dir.join(files::LAST_MODEL);
    let weights = std::fs::read(&model_path)
        .with_context(|| format!("cannot read {}", model_path.display()))?;
    let device = Device::Cpu;
    let model = cae_core::model_from_bytes(&weights, &model_path, &device)
        .and_then(|m| m.model(DType::F32, &device))
        .with_context(|| format!("cannot load {}", model_path.display()))?;
    if model.config() != &run.model {
        bail!(
            "{} does not hold the model {} describes; was the run directory edited?",
            model_path.display(),
            run_dir.join(files::CONFIG).display()
        );
    }

    let named = opts.dataset.clone().unwrap_or_else(|| run.dataset.clone());
    let (test, train, dataset) = load_data(&named, opts)?;
    let report = analysis::analyse(
        &model,
        train.as_ref(),
        &test,
        &EvalOptions::default(),
        &device,
    )
    .with_context(|| format!("evaluating {} failed", model_path.display()))?;

    std::fs::create_dir_all(&opts.out_dir)
        .with_context(|| format!("cannot create {}", opts.out_dir.display()))?;
    let sha256 = hex::encode(Sha256::digest(&weights));
    let card = model_card::render(&model_card::Card {
        repo_id: &opts.repo_id,
        run: &run,
        last_epoch: &last_epoch,
        report: &report,
        dataset: &dataset,
        sha256: &sha256,
    });
    let license = std::fs::read(crate::workspace_root().join("LICENSE"))
        .context("cannot read the workspace's LICENSE")?;
    let contents: Vec<(String, Vec<u8>)> = vec![
        (DEFAULT_FILE.to_owned(), weights),
        (
            sums_file_name(),
            format!("{sha256}  {DEFAULT_FILE}\n").into_bytes(),
        ),
        ("config.json".to_owned(), pretty_json(&run)?),
        ("eval.json".to_owned(), pretty_json(&report)?),
        ("README.md".to_owned(), card.into_bytes()),
        ("LICENSE".to_owned(), license),
    ];
    if !opts.force {
        let taken: Vec<String> = contents
            .iter()
            .map(|(name, _)| opts.out_dir.join(name))
            .filter(|path| path.exists())
            .map(|path| path.display().to_string())
            .collect();
        if !taken.is_empty() {
            bail!(
                "{} already exist; nothing was written. Pass --force to replace them, or choose another OUT_DIR",
                taken.join(", ")
            );
        }
    }
    let mut written = Vec::with_capacity(contents.len());
    for (name, bytes) in &contents {
        let path = opts.out_dir.join(name);
        write_atomic(&path, bytes).with_context(|| format!("cannot write {}", path.display()))?;
        written.push(path);
    }
    Ok(Published {
        out_dir: opts.out_dir.clone(),
        repo_id: opts.repo_id.clone(),
        files: written,
        sha256,
        last_epoch,
        report,
    })
}

fn pretty_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The test set (and the training set, for the probes) of `named`, and what the card says about
/// it. A directory whose files are MNIST's or Fashion-MNIST's own (their pinned sums match) is
/// named as that dataset.
fn load_data(
    named: &str,
    opts: &PublishOptions,
) -> Result<(Dataset, Option<Dataset>, CardDataset)> {
    let Ok(source) = named.parse::<DatasetSource>();
    let load_opts = |cache_dir: Option<PathBuf>, download: bool| LoadOptions {
        cache_dir,
        download,
        progress: false,
        ..LoadOptions::default()
    };
    let (source, load) = match &source {
        DatasetSource::Dir(dir) => match known_dataset_in(dir) {
            Some(known) => (known, load_opts(Some(dir.clone()), false)),
            None => (source.clone(), load_opts(None, false)),
        },
        _ => (
            source.clone(),
            load_opts(opts.data_dir.clone(), !opts.offline),
        ),
    };
    let read = |split: Split| {
        Dataset::load(&source, split, &load)
            .with_context(|| format!("cannot read the {split} split of {named}"))
    };
    let test = read(Split::Test)?;
    let train = if opts.probe {
        Some(read(Split::Train)?)
    } else {
        None
    };
    Ok((test, train, CardDataset::of(&source)))
}

/// MNIST or Fashion-MNIST when `dir` holds that dataset's test split with its pinned sums.
fn known_dataset_in(dir: &Path) -> Option<DatasetSource> {
    let opts = LoadOptions {
        cache_dir: Some(dir.to_path_buf()),
        download: false,
        progress: false,
        ..LoadOptions::default()
    };
    [
        (DatasetSpec::mnist(), DatasetSource::Mnist),
        (DatasetSpec::fashion_mnist(), DatasetSource::FashionMnist),
    ]
    .into_iter()
    .find(|(spec, _)| Dataset::load_spec(spec, Split::Test, &opts).is_ok())
    .map(|(_, source)| source)
}
