//! The model card (`README.md`) of a published run: the YAML metadata block the Hugging Face Hub
//! reads (license, library, tags, datasets, `model-index` with the measured metrics), then a
//! human description. Strings in the YAML are written as JSON strings, which YAML reads as
//! double-quoted scalars, so no value can break the block.

use std::fmt::Write as _;

use cae_data::DatasetSource;
use cae_train::analysis::EvalReport;
use cae_train::artifacts::EpochMetrics;
use cae_train::RunConfig;

use crate::fetch::{DEFAULT_FILE, DEFAULT_REPO};

/// How the card names the dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDataset {
    /// Human name (`MNIST`).
    pub name: String,
    /// Hub dataset id (`ylecun/mnist`), when the dataset is on the Hub.
    pub hub_id: Option<String>,
}

impl CardDataset {
    /// MNIST and Fashion-MNIST by their Hub ids; a directory by its own name.
    pub fn of(source: &DatasetSource) -> Self {
        let (name, hub_id) = match source {
            DatasetSource::Mnist => ("MNIST".to_owned(), Some("ylecun/mnist")),
            DatasetSource::FashionMnist => (
                "Fashion-MNIST".to_owned(),
                Some("zalando-datasets/fashion_mnist"),
            ),
            // A path (IDX files, images, an array, a table) by its own name.
            other => (
                other.path().map_or_else(
                    || other.to_string(),
                    |path| {
                        path.file_name().map_or_else(
                            || path.display().to_string(),
                            |n| n.to_string_lossy().into_owned(),
                        )
                    },
                ),
                None,
            ),
        };
        Self {
            name,
            hub_id: hub_id.map(str::to_owned),
        }
    }
}

/// Everything the card says.
#[derive(Debug)]
pub struct Card<'a> {
    pub repo_id: &'a str,
    pub run: &'a RunConfig,
    pub last_epoch: &'a EpochMetrics,
    pub report: &'a EvalReport,
    pub dataset: &'a CardDataset,
    pub sha256: &'a str,
}

fn quoted(s: &str) -> String {
    // invariant: a string always serialises to JSON.
    serde_json::to_string(s).expect("a string serialises")
}

/// `(metric type, name, value)` of every metric in the card's `model-index`.
pub fn metrics(card: &Card) -> Vec<(&'static str, String, f64)> {
    let report = card.report;
    let mut metrics = vec![
        (
            "bce",
            "Test BCE per pixel (cae-cli eval)".to_owned(),
            report.reconstruction.overall,
        ),
        (
            "bce",
            format!(
                "Test BCE per pixel logged after epoch {} of training",
                card.last_epoch.epoch
            ),
            card.last_epoch.test_reconstruction,
        ),
        (
            "jacobian_frobenius",
            "Mean Frobenius norm of the encoder Jacobian (test)".to_owned(),
            report.mean_jacobian_frobenius,
        ),
    ];
    if let Some(saturation) = report.saturation {
        metrics.push((
            "saturation",
            "Share of saturated code units (test)".to_owned(),
            saturation,
        ));
    }
    if let Some(probe) = &report.probe {
        metrics.push((
            "accuracy",
            "Linear-probe test accuracy of the codes".to_owned(),
            probe.test_accuracy,
        ));
    }
    metrics
}

/// The whole `README.md`.
pub fn render(card: &Card) -> String {
    let mut s = String::from("---\n");
    // The project is MIT OR Apache-2.0; the Hub's `license` takes one identifier, so the pair is
    // named as `other` with the licence file beside the weights.
    s.push_str("license: other\nlicense_name: mit-or-apache-2.0\nlicense_link: LICENSE\n");
    s.push_str("library_name: cae\n");
    s.push_str("tags:\n");
    for tag in [
        "contractive-autoencoder",
        "autoencoder",
        "representation-learning",
        "candle",
        "rust",
        "safetensors",
    ] {
        let _ = writeln!(s, "- {tag}");
    }
    if let Some(id) = &card.dataset.hub_id {
        let _ = writeln!(s, "datasets:\n- {}", quoted(id));
    }
    let dataset_type = card.dataset.hub_id.as_deref().unwrap_or(&card.dataset.name);
    let _ = writeln!(
        s,
        "model-index:\n- name: {}\n  results:",
        quoted(card.repo_id)
    );
    let _ = writeln!(
        s,
        "  - task:\n      type: image-feature-extraction\n      name: {}",
        quoted("Contractive autoencoding")
    );
    let _ = writeln!(
        s,
        "    dataset:\n      type: {}\n      name: {}\n      split: test",
        quoted(dataset_type),
        quoted(&card.dataset.name)
    );
    s.push_str("    metrics:\n");
    for (kind, name, value) in metrics(card) {
        let _ = writeln!(
            s,
            "    - type: {kind}\n      value: {value}\n      name: {}",
            quoted(&name)
        );
    }
    s.push_str("---\n\n");
    body(&mut s, card);
    s
}

fn body(s: &mut String, card: &Card) {
    let model = &card.run.model;
    let train = &card.run.train;
    let report = card.report;
    let _ = writeln!(s, "# {}\n", card.repo_id);
    let _ = writeln!(
        s,
        "A contractive autoencoder (Rifai et al., ICML 2011) trained on {} by \
         [cae](https://github.com/cae-rs/cae), on candle: `L = BCE(x', x) + λ·‖∂g(x)/∂x‖²_F` \
         with λ = {}.\n",
        card.dataset.name, train.lambda
    );
    s.push_str("## Use\n\n```sh\n");
    let repo_flag = if card.repo_id == DEFAULT_REPO {
        String::new()
    } else {
        format!(" --repo {} --sha256 {}", card.repo_id, card.sha256)
    };
    let _ = writeln!(s, "cargo xtask fetch-weights{repo_flag}");
    s.push_str("cae-cli reconstruct --input digit.png   # uses the fetched weights\n");
    s.push_str("cae-cli encode --input digits/ --format npy --output codes.npy\n```\n\n");
    let _ = writeln!(
        s,
        "`{DEFAULT_FILE}` carries its configuration in its safetensors metadata; any of these \
         commands also takes it as `--weights {DEFAULT_FILE}`. SHA-256: `{}`.\n",
        card.sha256
    );
    s.push_str("## Model and training\n\n");
    let _ = writeln!(
        s,
        "- architecture: `{}`\n- penalty: `{}`\n- epochs {}, batch size {}, learning rate {}, \
         seed {}\n- full configuration: `config.json`\n",
        serde_json::to_string(&model.architecture).unwrap_or_default(),
        serde_json::to_string(&model.penalty).unwrap_or_default(),
        train.epochs,
        train.batch_size,
        train.learning_rate,
        train.seed
    );
    let _ = writeln!(
        s,
        "## Results on the {} test set ({} images)\n\n| figure | value |\n|---|---|",
        card.dataset.name, report.samples
    );
    for (_, name, value) in metrics(card) {
        let _ = writeln!(s, "| {name} | {value:.6} |");
    }
    s.push_str(
        "\nMeasured with cae's `cae-cli eval` metrics (all of `eval.json`); every sum in f64, so \
         the training log and the evaluation give the same BCE.\n\n## License\n\nMIT OR \
         Apache-2.0, see `LICENSE`.\n",
    );
}
