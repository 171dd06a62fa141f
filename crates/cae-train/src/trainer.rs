//! The training loop and its run directory.
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cae_core::{
    read_model, read_tensors, save_model, write_tensors, CaeConfig, ContractiveAutoencoder,
};
use cae_data::{Batcher, Dataset};
use candle_core::{DType, Device, Var};
use candle_nn::VarMap;
use serde::{Deserialize, Serialize};

use crate::artifacts::{read_json, write_json, EpochMetrics, MetricsLog};
use crate::eval::evaluate;
use crate::figures::{plot_losses, save_reconstructions};
use crate::observer::{BatchReport, RunInfo, TrainObserver};
use crate::optim::Adam;
use crate::{TrainConfig, TrainError};

/// File names inside a run directory.
pub mod files {
    pub const CONFIG: &str = "config.json";
    pub const LAST_MODEL: &str = "model.safetensors";
    pub const BEST_MODEL: &str = "best.safetensors";
    /// Optimizer moments and loop position, for `--resume`.
    pub const STATE: &str = "state.safetensors";
    pub const LOSS_PLOT: &str = "loss.png";
    pub const RECONSTRUCTIONS: &str = "reconstructions.png";
}

const PROGRESS_KEY: &str = "cae.progress";
/// How many test images `reconstructions.png` shows.
const SHOWN_RECONSTRUCTIONS: usize = 10;

/// `config.json`: what the run trains and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: CaeConfig,
    pub train: TrainConfig,
    /// Which data it trains on, as the user named it (informational).
    pub dataset: String,
}

/// Where the loop stands: saved with every checkpoint so that a resumed run repeats the uninterrupted one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// The epoch in progress (1-based); `epochs + 1` when finished.
    epoch: usize,
    /// Batches of `epoch` already applied.
    batches_done: usize,
    /// Sums over the applied batches of `epoch`, weighted by batch size.
    sum_bce: f64,
    sum_penalty: f64,
    samples: usize,
    train_seconds: f64,
    adam_step: u64,
    best_test_bce: Option<f64>,
}

/// The result of [`Trainer::fit`].
#[derive(Debug, Clone)]
pub struct TrainSummary {
    pub run_dir: PathBuf,
    pub last: Option<EpochMetrics>,
    pub best_test_bce: Option<f64>,
}

/// Trains one model, checkpointing into a run directory.
pub struct Trainer {
    run: RunConfig,
    run_dir: PathBuf,
    device: Device,
    model: ContractiveAutoencoder,
    varmap: VarMap,
    adam: Adam,
    log: MetricsLog,
    progress: Progress,
}

impl Trainer {
    /// A fresh run in `run_dir`, which must not exist yet or be empty.
    pub fn new(run: RunConfig, run_dir: &Path, device: &Device) -> Result<Self, TrainError> {
        run.train.validate()?;
        run.model.validate()?;
        if run_dir.exists()
            && std::fs::read_dir(run_dir)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(TrainError::RunDir {
                path: run_dir.to_path_buf(),
                message: "the run directory already has files; pick a new --out, or continue it with --resume".into(),
            });
        }
        std::fs::create_dir_all(run_dir).map_err(|e| TrainError::RunDir {
            path: run_dir.to_path_buf(),
            message: format!("cannot create the run directory: {e}"),
        })?;
        write_json(&run_dir.join(files::CONFIG), &run)?;
        let (model, varmap) =
            ContractiveAutoencoder::init(&run.model, run.train.seed, DType::F32, device)?;
        let adam = Adam::new(named_vars(&varmap), run.train.adam)?;
        Ok(Self {
            run,
            run_dir: run_dir.to_path_buf(),
            device: device.clone(),
            model,
            varmap,
            adam,
            log: MetricsLog::new(),
            progress: Progress {
                epoch: 1,
                ..Progress::default()
            },
        })
    }

    /// Continues the run saved in `run_dir`, optionally with a new total number of epochs.
    pub fn resume(
        run_dir: &Path,
        epochs: Option<usize>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let mut run: RunConfig = read_json(&run_dir.join(files::CONFIG))?;
        if let Some(epochs) = epochs {
            run.train.epochs = epochs;
        }
        run.train.validate()?;
        let state = read_tensors(&run_dir.join(files::STATE), device)?;
        let progress: Progress = state
            .metadata
            .get(PROGRESS_KEY)
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| TrainError::RunDir {
                path: run_dir.join(files::STATE),
                message: format!(
                    "no readable `{PROGRESS_KEY}` entry; the file is not a cae training state"
                ),
            })?;
        let loaded = read_model(&run_dir.join(files::LAST_MODEL), device)?;
        let saved_step = loaded
            .metadata
            .get(PROGRESS_KEY)
            .and_then(|s| s.parse::<u64>().ok());
        if saved_step != Some(progress.adam_step) {
            return Err(TrainError::RunDir {
                path: run_dir.to_path_buf(),
                message: format!(
                    "{} (step {saved_step:?}) and {} (step {}) are from different moments of the run; cannot resume exactly",
                    files::LAST_MODEL,
                    files::STATE,
                    progress.adam_step
                ),
            });
        }
        if loaded.config != run.model {
            return Err(TrainError::RunDir {
                path: run_dir.join(files::LAST_MODEL),
                message: "the model configuration differs from config.json".into(),
            });
        }
        let (model, varmap) = loaded.into_trainable(DType::F32, device)?;
        let mut adam = Adam::new(named_vars(&varmap), run.train.adam)?;
        adam.restore(&state.tensors, progress.adam_step)?;
        let mut log = MetricsLog::read(run_dir)?;
        log.truncate_to_epoch(progress.epoch.saturating_sub(1));
        Ok(Self {
            run,
            run_dir: run_dir.to_path_buf(),
            device: device.clone(),
            model,
            varmap,
            adam,
            log,
            progress,
        })
    }

    pub fn model(&self) -> &ContractiveAutoencoder {
        &self.model
    }

    pub fn run_config(&self) -> &RunConfig {
        &self.run
    }

    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    pub fn metrics(&self) -> &MetricsLog {
        &self.log
    }

    /// Trains until the configured number of epochs, evaluating on all of `test` after each epoch and
    /// checkpointing. When `stop` becomes true the current batch is finished, the state saved, and
    /// [`TrainError::Interrupted`] returned.
    pub fn fit(
        &mut self,
        train: &Dataset,
        test: &Dataset,
        observer: &mut dyn TrainObserver,
        stop: &AtomicBool,
    ) -> Result<TrainSummary, TrainError> {
        let cfg = self.run.train.clone();
        let train = limit(train, cfg.train_limit);
        let test = limit(test, cfg.test_limit);
        let input_dim = self.model.input_dim();
        for (name, data) in [("training", &train), ("test", &test)] {
            if data.is_empty() || data.image_dim() != input_dim {
                return Err(TrainError::InvalidConfig(format!(
                    "the {name} set has {} images of {} pixels; the model needs at least one image of {input_dim} pixels",
                    data.len(),
                    data.image_dim()
                )));
            }
        }
        let batcher = Batcher::new(cfg.batch_size).shuffle(cfg.seed);
        let batches_per_epoch = batcher.num_batches(train.len());
        let total_steps = (batches_per_epoch * cfg.epochs).max(1) as f64;
        observer.on_start(&RunInfo {
            first_epoch: self.progress.epoch,
            epochs: cfg.epochs,
            batches_per_epoch,
            train_samples: train.len(),
            test_samples: test.len(),
            parameters: cae_core::param_count(&self.run.model)?,
            device: cae_core::describe_device(&self.device),
        });

        while self.progress.epoch <= cfg.epochs {
            let epoch = self.progress.epoch;
            observer.on_epoch_start(epoch);
            let order = batcher.order(train.len(), epoch);
            let mut lr = cfg.learning_rate;
            for batch in self.progress.batches_done..batches_per_epoch {
                let started = Instant::now();
                let indices =
                    &order[batch * cfg.batch_size..((batch + 1) * cfg.batch_size).min(order.len())];
                let x = train.gather_tensor(indices, &self.device)?;
                let global_step = ((epoch - 1) * batches_per_epoch + batch) as f64;
                lr = cfg
                    .lr_schedule
                    .rate(cfg.learning_rate, global_step / total_steps);
                // Probes depend only on (seed, epoch, batch), so a resumed run draws the same ones.
                self.model.set_probe_seed(mix(cfg.seed, epoch, batch));
                let step = cfg.step(&self.model, &x)?;
                let (bce, penalty, total) = (step.bce, step.penalty, step.total);
                if !total.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        batch,
                        value: total,
                        run_dir: self.run_dir.clone(),
                    });
                }
                self.adam.step(&step.gradients, lr)?;
                let rows = indices.len();
                let p = &mut self.progress;
                p.batches_done = batch + 1;
                p.sum_bce += bce * rows as f64;
                p.sum_penalty += penalty * rows as f64;
                p.samples += rows;
                p.adam_step = self.adam.step_count();
                p.train_seconds += started.elapsed().as_secs_f64();
                observer.on_batch(&BatchReport {
                    epoch,
                    batch,
                    bce,
                    penalty,
                    total,
                });
                if stop.load(Ordering::SeqCst) && batch + 1 < batches_per_epoch {
                    self.save_checkpoint()?;
                    return Err(TrainError::Interrupted {
                        epoch,
                        batches_done: batch + 1,
                        run_dir: self.run_dir.clone(),
                    });
                }
            }

            observer.on_evaluate(epoch);
            let eval = evaluate(&self.model, &test, cfg.eval_batch_size, &self.device)?;
            let p = &self.progress;
            let samples = p.samples.max(1) as f64;
            let metrics = EpochMetrics {
                epoch,
                train_bce: p.sum_bce / samples,
                train_penalty: p.sum_penalty / samples,
                train_total: (p.sum_bce + p.sum_penalty) / samples,
                test_bce: eval.bce,
                test_penalty: cfg.lambda * eval.jacobian_sq_norm,
                mean_jacobian_frobenius: eval.jacobian_frobenius,
                seconds: p.train_seconds,
                samples_per_second: p.samples as f64 / p.train_seconds.max(1e-9),
                learning_rate: lr,
            };
            let is_best = self
                .progress
                .best_test_bce
                .is_none_or(|b| metrics.test_bce < b);
            self.log.push(metrics.clone());
            self.progress = Progress {
                epoch: epoch + 1,
                adam_step: self.adam.step_count(),
                best_test_bce: if is_best {
                    Some(metrics.test_bce)
                } else {
                    self.progress.best_test_bce
                },
                ..Progress::default()
            };
            self.save_checkpoint()?;
            if is_best {
                self.save_model(&self.run_dir.join(files::BEST_MODEL))?;
            }
            self.log.write(&self.run_dir)?;
            plot_losses(
                self.log.epochs(),
                &self.run_dir.join(files::LOSS_PLOT),
                &format!("CAE training, λ = {}", cfg.lambda),
            )?;
            self.save_reconstructions(&test)?;
            observer.on_epoch_end(&metrics, is_best);
            if stop.load(Ordering::SeqCst) && epoch < cfg.epochs {
                return Err(TrainError::Interrupted {
                    epoch: epoch + 1,
                    batches_done: 0,
                    run_dir: self.run_dir.clone(),
                });
            }
        }
        Ok(TrainSummary {
            run_dir: self.run_dir.clone(),
            last: self.log.last().cloned(),
            best_test_bce: self.progress.best_test_bce,
        })
    }

    fn save_model(&self, path: &Path) -> Result<(), TrainError> {
        let meta = BTreeMap::from([(
            PROGRESS_KEY.to_string(),
            self.progress.adam_step.to_string(),
        )]);
        save_model(path, &self.run.model, &self.varmap, &meta)?;
        Ok(())
    }

    /// Model first, then optimizer state: both carry the step count, checked on resume.
    fn save_checkpoint(&self) -> Result<(), TrainError> {
        self.save_model(&self.run_dir.join(files::LAST_MODEL))?;
        let meta = BTreeMap::from([(
            PROGRESS_KEY.to_string(),
            serde_json::to_string(&self.progress).expect("progress always serialises"),
        )]);
        write_tensors(
            &self.run_dir.join(files::STATE),
            &self.adam.state_tensors()?,
            &meta,
        )?;
        Ok(())
    }

    fn save_reconstructions(&self, test: &Dataset) -> Result<(), TrainError> {
        let n = SHOWN_RECONSTRUCTIONS.min(test.len());
        let x = test.to_tensor(0..n, &self.device)?;
        let recon = self.model.reconstruct(&x)?;
        let flat = |t: &candle_core::Tensor| -> candle_core::Result<Vec<f32>> {
            t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
        };
        save_reconstructions(
            &flat(&x)?,
            &flat(&recon)?,
            n,
            test.cols(),
            test.rows(),
            &self.run_dir.join(files::RECONSTRUCTIONS),
        )?;
        Ok(())
    }
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("run_dir", &self.run_dir)
            .field("run", &self.run)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

fn named_vars(varmap: &VarMap) -> BTreeMap<String, Var> {
    let vars: HashMap<String, Var> = varmap
        .data()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    vars.into_iter().collect()
}

fn limit(data: &Dataset, n: Option<usize>) -> Cow<'_, Dataset> {
    match n {
        Some(n) if n < data.len() => Cow::Owned(data.take(n)),
        _ => Cow::Borrowed(data),
    }
}

/// A 64-bit seed for (seed, epoch, batch) (splitmix64 finaliser).
pub(crate) fn mix(seed: u64, epoch: usize, batch: usize) -> u64 {
    let mut z = seed ^ ((epoch as u64) << 32) ^ batch as u64;
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
