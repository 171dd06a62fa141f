//! `cae-cli train`: flags checked into a `RunConfig` (a fresh run) or against the saved one
//! (`--resume`), then `cae_train::Trainer` with progress bars or log lines; `--stack-on` goes to
//! `stack.rs`.
use std::fmt::Display;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use cae_core::{Architecture, CaeConfig, HessianPenalty, ReconstructionLoss};
use cae_data::{Dataset, DatasetSource};
use cae_train::{
    DataOptions, ResumeOptions, RunConfig, SavedRun, StackRunConfig, TestSource, TrainConfig,
    TrainError, Trainer,
};
use clap::Args;

use crate::data::DataArgs;
use crate::own_data::{self, OwnDataArgs};
use crate::progress::{stop_on_ctrl_c, Progress};
use crate::values::{with_default, DeviceChoice, Loss, Preset, Schedule};

/// The settings flags leave unset take the defaults of a fresh run (`TrainConfig::default()`),
/// or, with `--resume`, the run's saved values: a flag given on resume must agree with the saved
/// value, except `--epochs` and `--lr`, which change it (recorded in the run's config.json).
/// (So these flags stay `None` when not given; their help shows the library's defaults.)
#[derive(Debug, Args)]
pub struct TrainArgs {
    // Model preset (see `cae-cli presets`).
    #[arg(long, help = with_default("Model preset (see `cae-cli presets`).", Preset::default()))]
    pub(crate) preset: Option<Preset>,
    // Total number of epochs; on resume, the new total.
    #[arg(long, help = with_default(
        "Total number of epochs. With --resume: the new total, whatever it was.",
        TrainConfig::default().epochs,
    ))]
    pub(crate) epochs: Option<usize>,
    // Minibatch size.
    #[arg(long, help = with_default("Minibatch size.", TrainConfig::default().batch_size))]
    pub(crate) batch_size: Option<usize>,
    // Adam learning rate; on resume, the rate from here on.
    #[arg(long, help = with_default(
        "Adam learning rate. With --resume: the rate from here on.",
        TrainConfig::default().learning_rate,
    ))]
    pub(crate) lr: Option<f64>,
    // Learning-rate schedule.
    #[arg(long, value_enum, help = with_default(
        "Learning-rate schedule.",
        Schedule::of(TrainConfig::default().lr_schedule),
    ))]
    pub(crate) schedule: Option<Schedule>,
    // Weight λ of the Jacobian penalty.
    #[arg(long = "lambda", allow_negative_numbers = true, help = with_default(
        "Weight λ of the Jacobian penalty (0 trains a plain autoencoder).",
        TrainConfig::default().lambda,
    ))]
    pub(crate) lambda: Option<f64>,
    // The reconstruction loss.
    #[arg(long, value_enum, help = with_default(
        "Reconstruction loss: `bce` (sigmoid outputs, inputs in [0, 1]: images) or `mse` (linear \
         outputs; every input feature standardised on the training split, the standardisation \
         stored in the model file: real-valued data).",
        Loss::Bce,
    ))]
    pub(crate) loss: Option<Loss>,
    // Seed of the initial weights, the shuffling and the probes.
    #[arg(long, help = with_default(
        "Seed of the initial weights, the shuffling and the probes.",
        TrainConfig::default().seed,
    ))]
    pub(crate) seed: Option<u64>,
    // The dataset, by name or path.
    #[arg(long, help = with_default(
        "`mnist`, `fashion-mnist`, a directory of IDX files (train-* and t10k-*), a folder of \
         PNG/JPEG images (one subdirectory per class, optionally), a .npy array or a .csv table.",
        DatasetSource::Mnist,
    ))]
    pub(crate) dataset: Option<DatasetSource>,
    #[command(flatten)]
    pub(crate) own: OwnDataArgs,
    /// Where datasets are cached (default: $CAE_DATA_DIR, else the per-user cache directory).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Never download; fail with instructions if the data is missing.
    #[arg(long)]
    pub(crate) offline: bool,
    /// Run directory (default: runs/<preset>-<unix time>).
    #[arg(long, conflicts_with = "resume")]
    pub(crate) out: Option<PathBuf>,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value_t)]
    pub(crate) device: DeviceChoice,
    /// Continue the run in this directory from its last checkpoint, on its saved dataset and
    /// settings.
    #[arg(long)]
    pub(crate) resume: Option<PathBuf>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub(crate) train_limit: Option<usize>,
    /// Evaluate on the first N test images only.
    #[arg(long)]
    pub(crate) test_limit: Option<usize>,
    /// Train a one-layer CAE on the codes of this model (a run directory or a model file) and
    /// save the two as one stacked model (greedy layer-wise pretraining); --preset is not used.
    #[arg(long, value_name = "RUN_OR_MODEL", conflicts_with_all = ["resume", "preset"])]
    pub(crate) stack_on: Option<PathBuf>,
    // Code units: of an MLP preset (its width otherwise), or of the layer trained with --stack-on.
    #[arg(long, value_name = "N", help = with_default(
        "Code units: of an MLP preset (instead of the preset's), or of the layer trained with \
         --stack-on.",
        format!("the preset's; {} with --stack-on", StackRunConfig::DEFAULT_CODE_DIM),
    ))]
    pub(crate) code_dim: Option<usize>,
    /// Weight γ of the CAE+H term γ·E‖J(x) − J(x + ε)‖²_F (Rifai et al., ECML 2011); off unless set.
    #[arg(long, value_name = "GAMMA", conflicts_with = "resume")]
    pub(crate) hessian_gamma: Option<f64>,
    /// Standard deviation σ of the Gaussian corruption ε of CAE+H.
    #[arg(long, default_value_t = HessianPenalty::DEFAULT_SIGMA, requires = "hessian_gamma")]
    pub(crate) hessian_sigma: f64,
    /// Corrupted copies of each input per step for CAE+H.
    #[arg(long, default_value_t = HessianPenalty::DEFAULT_COPIES, requires = "hessian_gamma")]
    pub(crate) hessian_copies: usize,
}

impl TrainArgs {
    fn preset(&self) -> Preset {
        self.preset.unwrap_or_default()
    }

    /// The dataset of a fresh run, as the run records it.
    pub(crate) fn dataset(&self) -> String {
        canonical_dataset(self.dataset.as_ref().unwrap_or(&DatasetSource::Mnist))
    }

    pub(crate) fn train_config(&self) -> Result<TrainConfig> {
        let d = TrainConfig::default();
        let cfg = TrainConfig {
            epochs: self.epochs.unwrap_or(d.epochs),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            learning_rate: self.lr.unwrap_or(d.learning_rate),
            lr_schedule: self.schedule.map_or(d.lr_schedule, Schedule::lr_schedule),
            lambda: self.lambda.unwrap_or(d.lambda),
            seed: self.seed.unwrap_or(d.seed),
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            hessian: self.hessian_gamma.map(|gamma| HessianPenalty {
                gamma,
                sigma: self.hessian_sigma,
                copies: self.hessian_copies,
            }),
            ..d
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The dataset options of this command line, reading `dataset` (a run's recorded one) as
    /// `opts` say.
    pub(crate) fn data(&self, dataset: &str, opts: &DataOptions) -> DataArgs {
        DataArgs {
            dataset: own_data::apply(parse_dataset(dataset), opts),
            data_dir: self.data_dir.clone(),
            offline: self.offline,
        }
    }

    /// Refuses every flag that disagrees with the saved run, naming the saved value.
    fn check_against(&self, saved: &RunConfig) -> Result<()> {
        let t = &saved.train;
        let mut c = Conflicts::default();
        if let Some(preset) = self.preset {
            let given = with_code_dim(preset.config()?, self.code_dim)?;
            if sized_as(given, &saved.model) != saved.model {
                c.push("--preset", preset, preset_of(&saved.model));
            }
        }
        c.check("--batch-size", self.batch_size, t.batch_size);
        c.check("--lambda", self.lambda, t.lambda);
        if let Architecture::Mlp(mlp) = &saved.model.architecture {
            c.check("--code-dim", self.code_dim, mlp.code_dim);
        }
        if let Some(loss) = self
            .loss
            .filter(|l| l.reconstruction_loss() != saved.model.loss)
        {
            c.push("--loss", loss, saved.model.loss.key());
        }
        c.check("--seed", self.seed, t.seed);
        if let Some(schedule) = self.schedule {
            if schedule.lr_schedule() != t.lr_schedule {
                c.push("--schedule", schedule, Schedule::describe(t.lr_schedule));
            }
        }
        c.check_limit("--train-limit", self.train_limit, t.train_limit);
        c.check_limit("--test-limit", self.test_limit, t.test_limit);
        if let Some(dataset) = &self.dataset {
            if canonical_dataset(dataset) != saved.dataset {
                c.push("--dataset", dataset, &saved.dataset);
            }
        }
        if self.own.any_given() {
            let source = own_data::apply(parse_dataset(&saved.dataset), &saved.data);
            if self.own.options(&source, t.seed)? != saved.data {
                c.push(
                    "the dataset's reading or test-split flags",
                    "given",
                    "recorded",
                );
            }
        }
        c.into_result()
    }
}

/// `preset` with `code_dim` code units where given (MLP presets only).
fn with_code_dim(mut preset: CaeConfig, code_dim: Option<usize>) -> Result<CaeConfig> {
    let Some(code_dim) = code_dim else {
        return Ok(preset);
    };
    match &mut preset.architecture {
        Architecture::Mlp(mlp) if code_dim > 0 => mlp.code_dim = code_dim,
        Architecture::Mlp(_) => bail!("--code-dim must be at least 1"),
        Architecture::Conv(_) => {
            bail!("--code-dim applies to MLP presets; a conv preset's code is its last layer's output")
        }
    }
    Ok(preset)
}

/// `preset` with the input size, loss and standardisation of `saved`, as a run fits its preset
/// to its data.
fn sized_as(preset: CaeConfig, saved: &CaeConfig) -> CaeConfig {
    CaeConfig {
        height: saved.height,
        width: saved.width,
        loss: saved.loss,
        standardisation: saved.standardisation.clone(),
        ..preset
    }
}

/// The flags of a resumed run that disagree with its saved settings.
#[derive(Default)]
struct Conflicts(Vec<String>);

impl Conflicts {
    fn push(&mut self, flag: &str, given: impl Display, saved: impl Display) {
        self.0
            .push(format!("{flag} {given} (the run's is {saved})"));
    }

    /// `flag` given with a value other than the saved one.
    fn check<T: PartialEq + Display>(&mut self, flag: &str, given: Option<T>, saved: T) {
        if let Some(given) = given.filter(|g| *g != saved) {
            self.push(flag, given, saved);
        }
    }

    /// A limit given that is not the saved one (`none` when the run has none).
    fn check_limit(&mut self, flag: &str, given: Option<usize>, saved: Option<usize>) {
        if let Some(given) = given.filter(|g| Some(*g) != saved) {
            self.push(
                flag,
                given,
                saved.map_or("none".to_string(), |n| n.to_string()),
            );
        }
    }

    fn into_result(self) -> Result<()> {
        let conflicts = self.0;
        if conflicts.is_empty() {
            return Ok(());
        }
        bail!(
            "{} disagree{} with the saved run; a resumed run keeps its settings (only --epochs and --lr may change): leave {} out",
            conflicts.join(", "),
            if conflicts.len() == 1 { "s" } else { "" },
            if conflicts.len() == 1 { "it" } else { "them" },
        )
    }
}

/// The preset a saved model is, for messages.
fn preset_of(model: &CaeConfig) -> String {
    let is = |name: &str, code_dim: Option<usize>| {
        CaeConfig::preset(name)
            .ok()
            .and_then(|p| with_code_dim(p, code_dim).ok())
            .is_some_and(|p| sized_as(p, model) == *model)
    };
    let code_dim = match &model.architecture {
        Architecture::Mlp(mlp) => Some(mlp.code_dim),
        Architecture::Conv(_) => None,
    };
    let names = cae_core::PRESETS.iter().map(|(name, _)| *name);
    if let Some(name) = names.clone().find(|name| is(name, None)) {
        return format!("`{name}`");
    }
    // Presets that differ in their code width only (`wide`, `small`) are the same with it.
    let with_code_dim: Vec<String> = names
        .filter(|name| is(name, code_dim))
        .map(|name| format!("`{name}`"))
        .collect();
    match code_dim {
        Some(n) if !with_code_dim.is_empty() => {
            format!("{} with --code-dim {n}", with_code_dim.join(" or "))
        }
        _ => "a custom model".to_string(),
    }
}

/// A dataset as a run records it (`mnist`, `fashion-mnist`, or a directory), typed.
pub(crate) fn parse_dataset(recorded: &str) -> DatasetSource {
    match recorded.parse::<DatasetSource>() {
        Ok(source) => source,
        Err(never) => match never {},
    }
}

/// How a run records its dataset: the built-in names, or the absolute path.
pub(crate) fn canonical_dataset(source: &DatasetSource) -> String {
    match source.path() {
        Some(path) => own_data::canonical_path(path),
        None => source.to_string(),
    }
}

pub fn run(args: TrainArgs, quiet: bool) -> Result<()> {
    // Everything the user typed is checked before any data is read or any file written.
    let device = args.device.open()?;
    if let Some(base) = &args.stack_on {
        return crate::stack::run(&args, base, &device, quiet);
    }
    let (mut trainer, train, test) = match &args.resume {
        Some(dir) => {
            let saved = SavedRun::read(dir).map_err(hint)?;
            args.check_against(&saved.run)?;
            let (train, test) = load(
                &args,
                &saved.run.dataset,
                &saved.run.data,
                saved.run.model.loss,
                quiet,
            )?;
            let options = ResumeOptions {
                epochs: args.epochs,
                learning_rate: args.lr,
            };
            let trainer = Trainer::resume_with(dir, &options, &device)
                .map_err(hint)
                .with_context(|| format!("cannot resume {}", dir.display()))?;
            (trainer, train, test)
        }
        None => {
            let train_config = args.train_config()?;
            let dataset = args.dataset();
            let source = parse_dataset(&dataset);
            let data_options = args.own.options(&source, train_config.seed)?;
            let preset = with_code_dim(args.preset().config()?, args.code_dim)?;
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_run_dir(args.preset().name()));
            // Before the data is loaded: a wrong --out fails at once.
            cae_train::check_fresh_run_dir(&out).map_err(hint)?;
            let loss = args.loss.unwrap_or(Loss::Bce).reconstruction_loss();
            let (train, test) = load(&args, &dataset, &data_options, loss, quiet)?;
            let run = RunConfig {
                model: own_data::with_loss(
                    own_data::fit_model(preset, train.shape())?,
                    loss,
                    &train,
                )?,
                train: train_config,
                dataset,
                data: data_options,
            };
            let trainer = Trainer::new(run, &out, &device).map_err(hint)?;
            (trainer, train, test)
        }
    };
    tracing::info!(run_dir = %trainer.run_dir().display(), "training");

    let stop = stop_on_ctrl_c()?;
    let mut observer = Progress::new(
        !quiet && std::io::stderr().is_terminal(),
        trainer.run_config().model.loss,
    );
    let summary = trainer
        .fit(&train, &test, &mut observer, &stop)
        .map_err(hint)?;
    if let Some(last) = summary.last {
        println!(
            "done: {} epochs, train total {:.5}, test {} {:.5} (all {} test samples), mean ‖J‖_F {:.3}; run in {}",
            last.epoch,
            last.train_total,
            trainer.run_config().model.loss.key().to_uppercase(),
            last.test_reconstruction,
            test.len().min(trainer.run_config().train.test_limit.unwrap_or(usize::MAX)),
            last.mean_jacobian_frobenius,
            summary.run_dir.display()
        );
    }
    Ok(())
}

/// The training and test sets of a run's recorded dataset, checked for the BCE loss.
pub(crate) fn load(
    args: &TrainArgs,
    dataset: &str,
    opts: &DataOptions,
    loss: ReconstructionLoss,
    quiet: bool,
) -> Result<(Dataset, Dataset)> {
    let data = args.data(dataset, opts);
    let split = data.load_train_test(&own_data::test_split(opts), !quiet)?;
    if loss != ReconstructionLoss::Bce {
        return Ok((split.train, split.test));
    }
    match &opts.test {
        Some(TestSource::Dataset { path }) => {
            own_data::check_unit_interval(&[&split.train], dataset)?;
            own_data::check_unit_interval(&[&split.test], path)?;
        }
        _ => own_data::check_unit_interval(&[&split.train, &split.test], dataset)?,
    }
    Ok((split.train, split.test))
}

/// The library's facts, with what the user can do about them on this command line.
pub(crate) fn hint(error: TrainError) -> anyhow::Error {
    let dir = |d: &Path| d.display().to_string();
    let advice = match &error {
        TrainError::Interrupted { run_dir, .. } => {
            format!("resume with: cae-cli train --resume {}", dir(run_dir))
        }
        TrainError::NonFinite { run_dir, .. }
        | TrainError::Diverged { run_dir, .. }
        | TrainError::NonFiniteWeights { run_dir, .. } => format!(
            "try a lower --lr or --lambda; to go on from the last good checkpoint: cae-cli train --resume {} --lr NEW_RATE",
            dir(run_dir)
        ),
        TrainError::NotEmpty { path } => format!(
            "pick a new --out, or continue the run in it with --resume {}",
            dir(path)
        ),
        TrainError::Locked { .. } => {
            "wait for the other process to finish, or stop it first".into()
        }
        TrainError::NotARun { path, .. } if path.is_dir() => format!(
            "if the run died before saving its configuration, start it again with --out {}",
            dir(path)
        ),
        TrainError::NotARun { .. } => "check the --resume path".into(),
        _ => return error.into(),
    };
    anyhow!("{error}\n  hint: {advice}")
}

pub(crate) fn default_run_dir(preset: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{preset}-{secs}"))
}
