//! `cae-cli eval`: what a contractive autoencoder is for, measured — reconstruction, contraction,
//! the Jacobian's spectrum, saturation, linear-probe accuracy of the codes and the tangents the
//! code keeps — for one model or several side by side.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use cae_train::analysis::{self, EvalOptions, EvalReport, ProbeReport};
use cae_train::figures;
use clap::Args;
use serde::Serialize;

use crate::data::DataArgs;
use crate::own_data::{self, OwnDataArgs};
use crate::values::DeviceChoice;
use crate::weights::{ModelSource, WEIGHTS_HELP};

/// Enlargement of each 28×28 tangent image in `tangents-*.png`.
const TANGENT_SCALE: u32 = 4;

#[derive(Debug, Args)]
#[command(after_help = "\
Metrics (Rifai et al. 2011): the test reconstruction loss per value (BCE, or MSE for an MSE model; overall and per class); mean ‖J(x)‖_F of the \
encoder over the test set; the contraction curve, mean ‖f(x) − f(x + r·u)‖ / r for u uniform on \
the unit sphere; the encoder Jacobian's singular values averaged over test points; the share of \
saturated sigmoid code units; and the test accuracy of a logistic-regression probe trained on the \
training set's codes, beside the same probe on raw pixels.

A dataset of your own (--dataset an image folder, a .npy array or a CSV table) is read as \
`train` reads it: --test-dataset PATH or --test-fraction F (drawn with --seed; pass the run's \
seed to get its test split) gives the test set, the rest is the probe's training set. The \
probes need labels (class folders, --labels, --label-column) and are skipped without them; \
tangent pictures need grey images and are skipped for features and colour images.

Compare models by repeating --weights, e.g. a CAE against the same preset trained with --lambda 0:
  cae-cli eval --weights runs/cae/model.safetensors --weights runs/ae/model.safetensors --plots eval/")]
pub struct EvalArgs {
    /// A model file written by `cae-cli train`; repeat to compare models side by side
    /// (default: the weights `cargo xtask fetch-weights` installed, else the built-in model).
    #[arg(long, value_name = "FILE", long_help = WEIGHTS_HELP)]
    weights: Vec<PathBuf>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    own: OwnDataArgs,
    /// Evaluate on the first N test images only.
    #[arg(long, value_name = "N")]
    test_limit: Option<usize>,
    /// Train the linear probes on the first N training images only.
    #[arg(long, value_name = "N")]
    train_limit: Option<usize>,
    /// Skip the linear probes (no training set is read).
    #[arg(long)]
    no_probe: bool,
    /// Passes of the linear probe's gradient descent.
    #[arg(long, default_value_t = EvalOptions::default().probe_epochs)]
    probe_epochs: usize,
    /// Radii of the contraction curve.
    #[arg(long, value_delimiter = ',', default_values_t = EvalOptions::default().radii)]
    radii: Vec<f64>,
    /// Test points of the contraction curve.
    #[arg(long, default_value_t = EvalOptions::default().contraction_points)]
    contraction_points: usize,
    /// Test points whose Jacobian spectra are averaged.
    #[arg(long, default_value_t = EvalOptions::default().spectrum_points)]
    spectrum_points: usize,
    /// Test digits whose tangents are drawn (one per class, in class order).
    #[arg(long, default_value_t = analysis::DEFAULT_TANGENT_DIGITS)]
    tangent_digits: usize,
    /// Leading tangents drawn per digit.
    #[arg(long, default_value_t = analysis::DEFAULT_TANGENTS_PER_DIGIT)]
    tangents: usize,
    /// Seed of the random directions, and of the split --test-fraction draws.
    #[arg(long, default_value_t = EvalOptions::default().seed)]
    seed: u64,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Write contraction.png, spectrum.png, tangents-<model>.png and eval.json into this
    /// directory (created if missing).
    #[arg(long, value_name = "DIR")]
    plots: Option<PathBuf>,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value_t)]
    device: DeviceChoice,
}

/// Everything `eval` measured, as printed by `--json` and written to `eval.json`.
#[derive(Debug, Serialize)]
struct EvalOutput {
    dataset: String,
    options: EvalOptions,
    models: Vec<ModelOutput>,
    /// The same linear probe on raw pixels: the baseline the codes are compared with.
    pixel_probe: Option<ProbeReport>,
}

#[derive(Debug, Serialize)]
struct ModelOutput {
    name: String,
    weights: String,
    config: cae_core::CaeConfig,
    report: EvalReport,
}

pub fn run(args: EvalArgs, quiet: bool) -> Result<()> {
    let options = EvalOptions {
        contraction_points: args.contraction_points,
        radii: args.radii.clone(),
        spectrum_points: args.spectrum_points,
        probe_epochs: if args.no_probe { 0 } else { args.probe_epochs },
        seed: args.seed,
        ..EvalOptions::default()
    };
    if let Some(r) = options.radii.iter().find(|r| !(r.is_finite() && **r > 0.0)) {
        bail!("--radii must be positive numbers, got {r}");
    }
    if options.contraction_points == 0 || options.spectrum_points == 0 {
        bail!("--contraction-points and --spectrum-points must be at least 1");
    }
    if args.test_limit == Some(0) || args.train_limit == Some(0) {
        bail!("--test-limit and --train-limit must be at least 1");
    }
    let device = args.device.open()?;
    let load_test = || {
        own_data::load_split(&args.data, &args.own, args.seed, false, quiet).map(|(_, test)| test)
    };
    if crate::eval_classifier::run_if_classifiers(
        &args.weights,
        &load_test,
        args.test_limit,
        args.json,
        &device,
    )? {
        return Ok(());
    }

    // Every model is loaded before any data is read, so a bad file fails fast.
    let sources: Vec<ModelSource> = if args.weights.is_empty() {
        vec![ModelSource::find(None)]
    } else {
        args.weights
            .iter()
            .map(|p| ModelSource::find(Some(p)))
            .collect()
    };
    let paths: Vec<Option<&Path>> = sources.iter().map(ModelSource::path).collect();
    let names = model_names(&paths);
    let models = sources
        .iter()
        .map(|source| source.load(&device))
        .collect::<Result<Vec<_>>>()?;

    let limit = |d: Dataset, n: Option<usize>| match n {
        Some(n) => d.take(n),
        None => d,
    };
    let with_train = options.probe_epochs > 0;
    let (train, test) = own_data::load_split(&args.data, &args.own, args.seed, with_train, quiet)?;
    let test = limit(test, args.test_limit);
    let mut train = train.map(|t| limit(t, args.train_limit));
    if !train
        .as_ref()
        .is_none_or(|t| t.is_labelled() && test.is_labelled())
    {
        tracing::info!(
            "{} has no labels: the linear probes are skipped",
            args.data.dataset
        );
        train = None;
    }
    let options = EvalOptions {
        probe_epochs: if train.is_some() {
            options.probe_epochs
        } else {
            0
        },
        ..options
    };
    for ((model, name), source) in models.iter().zip(&names).zip(&sources) {
        if model.input_dim() != test.image_dim() {
            bail!(
                "model `{name}` ({}) takes {} inputs per sample, but the samples of {} are {} = {} values; evaluate it on the dataset it was trained on",
                source.name(),
                model.input_dim(),
                args.data.dataset,
                test.shape(),
                test.image_dim()
            );
        }
    }
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the plot directory {}", dir.display()))?;
    }

    let mut outputs = Vec::new();
    for ((model, name), source) in models.iter().zip(&names).zip(&sources) {
        tracing::info!(model = %name, "evaluating");
        let report = analysis::analyse(model, train.as_ref(), &test, &options, &device)
            .with_context(|| format!("evaluating model `{name}` failed"))?;
        outputs.push(ModelOutput {
            name: name.clone(),
            weights: source.name(),
            config: model.config().clone(),
            report,
        });
    }
    let pixel_probe = match &train {
        Some(train) => {
            tracing::info!("linear probe on the raw inputs");
            Some(analysis::probe_pixels(
                train,
                &test,
                options.probe_epochs,
                options.probe_lr,
                &device,
            )?)
        }
        None => None,
    };
    let output = EvalOutput {
        dataset: args.data.dataset.to_string(),
        options,
        models: outputs,
        pixel_probe,
    };

    if let Some(dir) = &args.plots {
        write_plots(dir, &output, &models, &test, &args, &device)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&output)?);
    } else {
        let reports: Vec<(&str, &EvalReport)> = output
            .models
            .iter()
            .map(|m| (m.name.as_str(), &m.report))
            .collect();
        print!("{}", analysis::render_table(&reports));
        if let Some(p) = &output.pixel_probe {
            println!(
                "linear probe on the raw inputs: train {:.2}%, test {:.2}%",
                100.0 * p.train_accuracy,
                100.0 * p.test_accuracy
            );
        }
        if let Some(dir) = &args.plots {
            println!("plots and eval.json written to {}", dir.display());
        }
    }
    Ok(())
}

/// Short, distinct names for the table's columns: a run directory's name for its
/// `model.safetensors` / `best.safetensors`, else the file's stem; the full path when those clash.
fn model_names(paths: &[Option<&Path>]) -> Vec<String> {
    let short = |p: &Option<&Path>| -> String {
        let Some(p) = p else {
            return "default".into();
        };
        let stem = p.file_stem().map(|s| s.to_string_lossy().into_owned());
        let dir = p
            .parent()
            .and_then(Path::file_name)
            .map(|s| s.to_string_lossy().into_owned());
        match (stem.as_deref(), dir) {
            (Some("model"), Some(dir)) => dir,
            (Some("best"), Some(dir)) => format!("{dir} (best)"),
            (Some(stem), _) => stem.to_string(),
            (None, _) => p.display().to_string(),
        }
    };
    let names: Vec<String> = paths.iter().map(short).collect();
    names
        .iter()
        .zip(paths)
        .map(|(name, path)| {
            if names.iter().filter(|n| *n == name).count() > 1 {
                path.map_or(name.clone(), |p| p.display().to_string())
            } else {
                name.clone()
            }
        })
        .collect()
}

/// The first test image of each class, for the first `n` classes present.
fn one_per_class(test: &Dataset, n: usize) -> Vec<usize> {
    let mut picked: Vec<(u8, usize)> = Vec::new();
    for (i, &label) in test.labels().iter().enumerate() {
        if !picked.iter().any(|(l, _)| *l == label) {
            picked.push((label, i));
        }
    }
    picked.sort_unstable();
    picked.into_iter().take(n).map(|(_, i)| i).collect()
}

fn write_plots(
    dir: &Path,
    output: &EvalOutput,
    models: &[ContractiveAutoencoder],
    test: &Dataset,
    args: &EvalArgs,
    device: &candle_core::Device,
) -> Result<()> {
    let curves: Vec<(&str, &[(f64, f64)])> = output
        .models
        .iter()
        .map(|m| (m.name.as_str(), m.report.contraction.as_slice()))
        .collect();
    analysis::plot_contraction_curves(
        &curves,
        &dir.join("contraction.png"),
        "Contraction of the encoder",
    )?;
    let spectra: Vec<(&str, &[f64])> = output
        .models
        .iter()
        .map(|m| (m.name.as_str(), m.report.spectrum.as_slice()))
        .collect();
    analysis::plot_spectra(
        &spectra,
        &dir.join("spectrum.png"),
        "Singular values of the encoder Jacobian",
    )?;
    let grey = test.shape().channels() == Some(1);
    if !grey && args.tangent_digits > 0 && args.tangents > 0 {
        tracing::info!(
            "the samples are {}, not grey images: no tangent pictures",
            test.shape()
        );
    }
    if grey && args.tangent_digits > 0 && args.tangents > 0 {
        let digits = one_per_class(test, args.tangent_digits);
        for (model, out) in models.iter().zip(&output.models) {
            // Each figure row: the test digit, then its leading tangents (grey = 0).
            let rows = digits
                .iter()
                .map(|&i| {
                    let x = model.prepare_inputs(&test.to_tensor(i..i + 1, device)?)?;
                    let mut row = test.sample_f32(i);
                    for t in analysis::leading_tangents(model, &x, args.tangents)? {
                        row.extend(analysis::tangent_to_image(&t));
                    }
                    Ok(row)
                })
                .collect::<Result<Vec<_>>>()
                .with_context(|| format!("computing the tangents of `{}` failed", out.name))?;
            let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
            let grid = figures::image_grid(&refs, test.cols(), test.rows(), TANGENT_SCALE);
            let file = format!("tangents-{}.png", file_safe(&out.name));
            figures::save_png(&grid, &dir.join(file))?;
        }
    }
    cae_train::artifacts::write_json(&dir.join("eval.json"), output)?;
    Ok(())
}

/// `name` with every character that is not alphanumeric, `-` or `_` replaced by `_`.
fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
