//! `cae-cli eval` on classifier files (written by `cae-cli finetune`): the test error, overall
//! and per class.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_data::Dataset;
use candle_core::{DType, Device};
use serde::Serialize;

#[derive(Debug, Serialize)]
struct ClassifierReport {
    weights: String,
    samples: usize,
    test_error: f64,
    /// `(label, count, error rate of that class)`.
    per_class: Vec<(u8, usize, f64)>,
}

/// Whether `path` is a classifier file (an unreadable file is not: the model loader reports it).
fn is_classifier_file(path: &Path) -> bool {
    std::fs::read(path).is_ok_and(|bytes| cae_core::is_classifier(&bytes))
}

/// Evaluates `weights` when they are all classifier files and returns true; returns false
/// when none is (they are autoencoders, for the ordinary `eval`). `load_test` reads the test set.
pub fn run_if_classifiers(
    weights: &[PathBuf],
    load_test: &dyn Fn() -> Result<Dataset>,
    test_limit: Option<usize>,
    json: bool,
    device: &Device,
) -> Result<bool> {
    let classifiers = weights.iter().filter(|p| is_classifier_file(p)).count();
    if classifiers == 0 {
        return Ok(false);
    }
    if classifiers < weights.len() {
        bail!("evaluate classifiers (from `cae-cli finetune`) and autoencoders in separate runs of eval");
    }
    let models = weights
        .iter()
        .map(|p| {
            cae_core::read_classifier(p, device)
                .and_then(|c| c.classifier(DType::F32, device))
                .with_context(|| format!("cannot load the classifier {}", p.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let test = load_test()?;
    if !test.is_labelled() {
        bail!("the test set has no labels: a classifier's test error needs them (class subfolders, --labels, --label-column)");
    }
    let test = match test_limit {
        Some(n) => test.take(n),
        None => test,
    };
    let mut reports = Vec::new();
    for (path, model) in weights.iter().zip(&models) {
        if model.autoencoder().input_dim() != test.image_dim() {
            bail!(
                "{} takes {} inputs per image; the test images have {} pixels",
                path.display(),
                model.autoencoder().input_dim(),
                test.image_dim()
            );
        }
        let mut per_class = std::collections::BTreeMap::<u8, (usize, usize)>::new();
        for batch in test.batches(cae_train::analysis::EVAL_BATCH, device) {
            let batch = batch?;
            let predicted = model.predict(&batch.images)?;
            for (p, &label) in predicted.iter().zip(&batch.labels) {
                let entry = per_class.entry(label).or_default();
                entry.0 += 1;
                entry.1 += usize::from(*p != u32::from(label));
            }
        }
        let wrong: usize = per_class.values().map(|c| c.1).sum();
        reports.push(ClassifierReport {
            weights: path.display().to_string(),
            samples: test.len(),
            test_error: wrong as f64 / test.len().max(1) as f64,
            per_class: per_class
                .into_iter()
                .map(|(label, (n, w))| (label, n, w as f64 / n as f64))
                .collect(),
        });
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    } else {
        for r in &reports {
            println!(
                "{}: test error {:.2}% ({} images)",
                r.weights,
                100.0 * r.test_error,
                r.samples
            );
            let classes: Vec<String> = r
                .per_class
                .iter()
                .map(|(label, n, e)| format!("{label}: {:.2}% of {n}", 100.0 * e))
                .collect();
            println!("  per class: {}", classes.join(", "));
        }
    }
    Ok(true)
}
