//! `cae-cli finetune`: a pretrained CAE's encoder plus a softmax layer, trained on labels (Adam
//! or SGD, early stopping on the last training images), optionally as a Manifold Tangent Classifier.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_train::{error_rate, finetune, Dropout, FinetuneConfig, FinetuneOptimizer, TangentProp};
use candle_core::DType;
use clap::Args;

use crate::data::DataArgs;
use crate::own_data::{self, OwnDataArgs};
use crate::values::{DeviceChoice, Preset, Schedule};
use crate::weights::{DEFAULT_MODEL, DEFAULT_MODEL_NAME};

#[derive(Debug, Args)]
#[command(after_help = "\
The validation split (the last --validation training images) chooses the epoch that is kept; \
the test set is measured once, at the end, on the kept weights. With --tangent-prop the \
classifier is the Manifold Tangent Classifier (Rifai et al., NIPS 2011): the pretrained \
encoder's --tangents leading Jacobian directions at each training image are found first (kept in \
memory: images × tangents × 784 × 4 bytes), and the output's change along them is penalised.

A labelled dataset of your own (--dataset a class folder, a .npy with --labels, a CSV with \
--label-column) is read as `train` reads it; --test-dataset or --test-fraction (drawn with \
--seed) gives the test set, and --validation must be smaller than the rest.")]
pub struct FinetuneArgs {
    /// The pretrained model (a model file written by `cae-cli train`, stacked or not; default:
    /// the model built into this binary).
    #[arg(long, value_name = "FILE", conflicts_with = "random_init")]
    weights: Option<PathBuf>,
    /// Start from freshly initialised weights of this preset instead of a pretrained model (the
    /// baseline: the same network trained from random initialisation).
    #[arg(long, value_name = "PRESET")]
    random_init: Option<Preset>,
    /// Where to write the classifier file (must not exist).
    #[arg(long, value_name = "FILE", default_value = "classifier.safetensors")]
    out: PathBuf,
    /// The most epochs.
    #[arg(long, default_value_t = FinetuneConfig::default().max_epochs)]
    epochs: usize,
    /// Stop after this many epochs without a lower validation error.
    #[arg(long, default_value_t = FinetuneConfig::default().patience)]
    patience: usize,
    /// Images per step.
    #[arg(long, default_value_t = FinetuneConfig::default().batch_size)]
    batch_size: usize,
    /// Learning rate (Adam's; SGD's with --sgd-momentum, which wants a larger one, e.g. 0.1).
    #[arg(long, default_value_t = FinetuneConfig::default().learning_rate)]
    lr: f64,
    /// Learning-rate schedule over --epochs (a run stopped early stops on the way).
    #[arg(long, value_enum, default_value_t = Schedule::of(FinetuneConfig::default().lr_schedule))]
    schedule: Schedule,
    /// Probability of dropping each input value at every training step (dropout, in [0, 1); 0: off;
    /// the MNIST recipe: 0.2).
    #[arg(long, value_name = "P", default_value_t = FinetuneConfig::default().dropout.input)]
    input_dropout: f64,
    /// Probability of dropping each code unit (the softmax layer's input) at every training step
    /// (in [0, 1); 0: off; the MNIST recipe: 0.5).
    #[arg(long, value_name = "P", default_value_t = FinetuneConfig::default().dropout.code)]
    dropout: f64,
    /// Probability of dropping each unit of the encoder's hidden layers below the code at every
    /// training step (a stacked model's lower codes; in [0, 1); 0: off).
    #[arg(long, value_name = "P", default_value_t = FinetuneConfig::default().dropout.hidden)]
    hidden_dropout: f64,
    /// Fine-tune with SGD with this momentum (in [0, 1); 0: plain SGD) instead of Adam, as the
    /// CAE papers did.
    #[arg(long, value_name = "M")]
    sgd_momentum: Option<f64>,
    /// Decoupled (AdamW-style, for SGD too) weight decay: each step multiplies every weight by
    /// 1 − lr·W first.
    #[arg(long, value_name = "W", default_value_t = FinetuneConfig::default().adam.weight_decay)]
    weight_decay: f64,
    /// The last N training images are the validation split (0: none; every image is trained on for
    /// --epochs and the last epoch is kept — the final run once --epochs was chosen on a split).
    #[arg(long, default_value_t = FinetuneConfig::default().validation)]
    validation: usize,
    /// Seed of the initialisation (the softmax layer; every weight with --random-init), the shuffling and the tangents' start.
    #[arg(long, default_value_t = FinetuneConfig::default().seed)]
    seed: u64,
    /// Use only the first N training images (the validation split is their last --validation).
    #[arg(long)]
    train_limit: Option<usize>,
    /// Measure the test error on the first N test images only.
    #[arg(long)]
    test_limit: Option<usize>,
    /// Weight of the tangent-propagation penalty (Manifold Tangent Classifier); off unless set.
    #[arg(long, value_name = "WEIGHT")]
    tangent_prop: Option<f64>,
    /// Tangents per training image for --tangent-prop.
    #[arg(long, default_value_t = TangentProp::DEFAULT_TANGENTS, requires = "tangent_prop")]
    tangents: usize,
    /// Subspace-iteration steps that find the tangents.
    #[arg(long, default_value_t = TangentProp::DEFAULT_ITERATIONS, requires = "tangent_prop")]
    tangent_iterations: usize,
    /// Propagate this many random ±1 combinations of each image's tangents per step instead of
    /// every tangent: an unbiased estimate of the penalty at probes/--tangents of its cost.
    #[arg(long, value_name = "M", requires = "tangent_prop")]
    tangent_probes: Option<usize>,
    #[command(flatten)]
    data: DataArgs,
    #[command(flatten)]
    own: OwnDataArgs,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value_t)]
    device: DeviceChoice,
}

pub fn run(args: FinetuneArgs, quiet: bool) -> Result<()> {
    let cfg = FinetuneConfig {
        max_epochs: args.epochs,
        patience: args.patience,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        lr_schedule: args.schedule.lr_schedule(),
        adam: cae_train::AdamParams {
            weight_decay: args.weight_decay,
            ..FinetuneConfig::default().adam
        },
        optimizer: args
            .sgd_momentum
            .map_or(FinetuneOptimizer::Adam, |momentum| FinetuneOptimizer::Sgd {
                momentum,
            }),
        dropout: Dropout {
            input: args.input_dropout,
            hidden: args.hidden_dropout,
            code: args.dropout,
        },
        validation: args.validation,
        seed: args.seed,
        train_limit: args.train_limit,
        tangent_prop: args.tangent_prop.map(|weight| TangentProp {
            weight,
            tangents: args.tangents,
            iterations: args.tangent_iterations,
            probes: args.tangent_probes,
        }),
    };
    cfg.validate()?;
    if args.test_limit == Some(0) {
        bail!("--test-limit must be at least 1");
    }
    if args.out.exists() {
        bail!(
            "{} already exists; pick another --out (nothing is overwritten)",
            args.out.display()
        );
    }
    let device = args.device.open()?;
    let base = match (&args.weights, &args.random_init) {
        (Some(path), _) => cae_core::read_model(path, &device)
            .with_context(|| format!("cannot load the pretrained model {}", path.display()))?,
        (None, Some(preset)) => {
            let config = preset.config()?;
            let varmap = cae_core::init_varmap(&config, args.seed, DType::F32, &device)?;
            cae_train::loaded_from_varmap(&config, &varmap)?
        }
        (None, None) => {
            cae_core::model_from_bytes(DEFAULT_MODEL, Path::new(DEFAULT_MODEL_NAME), &device)?
        }
    };
    let (train, test) = own_data::load_split(&args.data, &args.own, args.seed, true, quiet)?;
    // invariant: load_split returns the training set when asked for it.
    let train = train.expect("the training set was asked for");
    if !train.is_labelled() {
        bail!(
            "{}: fine-tuning needs labels and this dataset has none\n  hint: give them as class \
             subfolders, --labels FILE.npy or --label-column NAME",
            args.data.dataset
        );
    }
    if base.config.input_dim() != train.image_dim() {
        bail!(
            "the pretrained model takes {} inputs, but the samples of {} are {} = {} values; fine-tune a model trained on this data",
            base.config.input_dim(),
            args.data.dataset,
            train.shape(),
            train.image_dim()
        );
    }
    let usable = train.len().min(cfg.train_limit.unwrap_or(usize::MAX));
    if cfg.validation >= usable {
        bail!(
            "--validation {} leaves nothing to train on: the training set of {} has {usable} samples{}\n  hint: pass a smaller --validation, e.g. {}",
            cfg.validation,
            args.data.dataset,
            if usable < train.len() { " within --train-limit" } else { "" },
            (usable / 5).max(1)
        );
    }
    let test = match args.test_limit {
        Some(n) => test.take(n),
        None => test,
    };
    let summary = finetune(&base, &cfg, &train, &args.out, &device, &mut |e| {
        tracing::info!(
            "epoch {:>3}  train loss {:.5} tangent penalty {:.5} | validation error {} | {:.1} s",
            e.epoch,
            e.train_loss,
            e.tangent_penalty,
            percent(e.validation_error),
            e.seconds
        );
    })?;
    let classifier =
        cae_core::read_classifier(&args.out, &device)?.classifier(DType::F32, &device)?;
    let test_error = error_rate(&classifier, &test, 0..test.len(), &device)?;
    let train_seconds: f64 = summary.epochs.iter().map(|e| e.seconds).sum();
    println!(
        "done: kept epoch {} of {} (validation error {}), test error {:.2}% on {} samples; tangents {:.1} s, fine-tuning {:.1} s; classifier {}",
        summary.best_epoch,
        summary.epochs.len(),
        percent(summary.best_validation_error),
        100.0 * test_error,
        test.len(),
        summary.tangent_seconds,
        train_seconds,
        args.out.display()
    );
    Ok(())
}

/// A share as a percentage, or `none` where there is no validation split.
fn percent(share: Option<f64>) -> String {
    share.map_or_else(|| "none".into(), |s| format!("{:.2}%", 100.0 * s))
}
