use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use cae_core::{CaeConfig, HessianPenalty};
use cae_data::Split;
use cae_train::artifacts::EpochMetrics;
use cae_train::{BatchReport, LrSchedule, RunConfig, RunInfo, TrainConfig, TrainObserver, Trainer};
use clap::Args;

use crate::data::DataArgs;
use indicatif::{ProgressBar, ProgressStyle};

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Model preset (see `cae-cli presets`).
    #[arg(long, default_value = cae_core::DEFAULT_PRESET)]
    pub(crate) preset: String,
    #[arg(long, default_value_t = 20)]
    pub(crate) epochs: usize,
    #[arg(long, default_value_t = 600)]
    pub(crate) batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 5e-3)]
    pub(crate) lr: f64,
    /// Learning-rate schedule: `constant` or `cosine` (decays to 1% of --lr by the last step).
    #[arg(long, default_value = "constant")]
    pub(crate) schedule: String,
    /// Weight λ of the Jacobian penalty (0 trains a plain autoencoder).
    #[arg(long = "lambda", default_value_t = 1e-4, allow_negative_numbers = true)]
    pub(crate) lambda: f64,
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    #[command(flatten)]
    pub(crate) data: DataArgs,
    /// Run directory (default: runs/<preset>-<unix time>).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value = "auto")]
    pub(crate) device: String,
    /// Continue the run in this directory (its saved configuration is used; --epochs may extend it).
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
    #[arg(long, value_name = "RUN_OR_MODEL", conflicts_with = "resume")]
    pub(crate) stack_on: Option<PathBuf>,
    /// Code units of the layer trained with --stack-on.
    #[arg(long, default_value_t = 1000, requires = "stack_on")]
    pub(crate) code_dim: usize,
    /// Weight γ of the CAE+H term γ·E‖J(x) − J(x + ε)‖²_F (Rifai et al., ECML 2011); off unless set.
    #[arg(long, value_name = "GAMMA")]
    pub(crate) hessian_gamma: Option<f64>,
    /// Standard deviation σ of the Gaussian corruption ε of CAE+H.
    #[arg(long, default_value_t = 0.1, requires = "hessian_gamma")]
    pub(crate) hessian_sigma: f64,
    /// Corrupted copies of each input per step for CAE+H.
    #[arg(long, default_value_t = 4, requires = "hessian_gamma")]
    pub(crate) hessian_copies: usize,
}

impl TrainArgs {
    pub(crate) fn train_config(&self) -> Result<TrainConfig> {
        let lr_schedule = match self.schedule.as_str() {
            "constant" => LrSchedule::Constant,
            "cosine" => LrSchedule::Cosine {
                final_fraction: 0.01,
            },
            other => bail!("unknown --schedule `{other}`: use `constant` or `cosine`"),
        };
        let cfg = TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            lr_schedule,
            lambda: self.lambda,
            seed: self.seed,
            train_limit: self.train_limit,
            test_limit: self.test_limit,
            hessian: self.hessian_gamma.map(|gamma| HessianPenalty {
                gamma,
                sigma: self.hessian_sigma,
                copies: self.hessian_copies,
            }),
            ..TrainConfig::default()
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

pub fn run(args: TrainArgs, quiet: bool) -> Result<()> {
    // Everything the user typed is checked before any data is read or any file written.
    let device = cae_core::device(&args.device)?;
    if let Some(base) = &args.stack_on {
        return crate::stack::run(&args, base, &device, quiet);
    }
    let fresh = match &args.resume {
        None => Some((CaeConfig::preset(&args.preset)?, args.train_config()?)),
        Some(_) => None,
    };
    let train = args.data.load(Split::Train, !quiet)?;
    let test = args.data.load(Split::Test, !quiet)?;

    let mut trainer = match (&args.resume, fresh) {
        (Some(dir), _) => {
            let epochs = (args.epochs != 20).then_some(args.epochs);
            Trainer::resume(dir, epochs, &device)
                .with_context(|| format!("cannot resume {}", dir.display()))?
        }
        (None, Some((model, train_cfg))) => {
            let out = args
                .out
                .clone()
                .unwrap_or_else(|| default_run_dir(&args.preset));
            let run = RunConfig {
                model,
                train: train_cfg,
                dataset: args.data.dataset.clone(),
            };
            Trainer::new(run, &out, &device)?
        }
        (None, None) => unreachable!("a fresh run always has its configuration"),
    };
    tracing::info!(run_dir = %trainer.run_dir().display(), "training");

    let stop = stop_on_ctrl_c()?;
    let mut observer = Progress::new(!quiet && std::io::stderr().is_terminal());
    let summary = trainer.fit(&train, &test, &mut observer, &stop)?;
    if let Some(last) = summary.last {
        println!(
            "done: {} epochs, train total {:.5}, test BCE {:.5} (all {} test images), mean ‖J‖_F {:.3}; run in {}",
            last.epoch,
            last.train_total,
            last.test_bce,
            test.len().min(trainer.run_config().train.test_limit.unwrap_or(usize::MAX)),
            last.mean_jacobian_frobenius,
            summary.run_dir.display()
        );
    }
    Ok(())
}

pub(crate) fn default_run_dir(preset: &str) -> PathBuf {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    PathBuf::from("runs").join(format!("{preset}-{secs}"))
}

/// Progress bars on a terminal, plain log lines otherwise (CI, pipes).
pub(crate) struct Progress {
    bars: bool,
    bar: Option<ProgressBar>,
    batches_per_epoch: usize,
    epochs: usize,
}

impl Progress {
    pub(crate) fn new(bars: bool) -> Self {
        Self {
            bars,
            bar: None,
            batches_per_epoch: 0,
            epochs: 0,
        }
    }
}

impl TrainObserver for Progress {
    fn on_start(&mut self, info: &RunInfo) {
        self.batches_per_epoch = info.batches_per_epoch;
        self.epochs = info.epochs;
        tracing::info!(
            "{} parameters on {}; {} training / {} test images; {} batches per epoch; epochs {}..={}",
            info.parameters,
            info.device,
            info.train_samples,
            info.test_samples,
            info.batches_per_epoch,
            info.first_epoch,
            info.epochs
        );
    }

    fn on_epoch_start(&mut self, epoch: usize) {
        if self.bars {
            let bar = ProgressBar::new(self.batches_per_epoch as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", self.epochs));
            self.bar = Some(bar);
        }
    }

    fn on_batch(&mut self, r: &BatchReport) {
        if let Some(bar) = &self.bar {
            bar.set_position(r.batch as u64 + 1);
            bar.set_message(format!("bce {:.4} pen {:.4}", r.bce, r.penalty));
        } else {
            tracing::debug!(
                epoch = r.epoch,
                batch = r.batch,
                bce = r.bce,
                penalty = r.penalty,
                "batch"
            );
        }
    }

    fn on_evaluate(&mut self, _epoch: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message("evaluating on the test set");
        }
    }

    fn on_epoch_end(&mut self, m: &EpochMetrics, is_best: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "epoch {:>3}  train bce {:.5} pen {:.5} total {:.5} | test bce {:.5} pen {:.5} ‖J‖_F {:.3} | {:.1} s, {:.0} samples/s{}",
            m.epoch,
            m.train_bce,
            m.train_penalty,
            m.train_total,
            m.test_bce,
            m.test_penalty,
            m.mean_jacobian_frobenius,
            m.seconds,
            m.samples_per_second,
            if is_best { "  (best)" } else { "" }
        );
    }
}

/// A flag set by the first Ctrl-C (the run saves and stops); a second one exits at once.
pub(crate) fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without saving the current batch");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: finishing this batch and saving (press Ctrl-C again to quit now)"
            );
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    Ok(stop)
}
