//! The training loop and its run directory.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cae_core::{
    model_from_bytes, model_to_bytes, tensors_from_bytes, tensors_to_bytes, write_atomic,
    CaeConfig, ContractiveAutoencoder,
};
use cae_data::{Batcher, Dataset};
use candle_core::{DType, Device};
use candle_nn::{Optimizer, VarMap};
use serde::{Deserialize, Serialize};

use crate::artifacts::{EpochMetrics, MetricsLog, METRICS_JSONL};
use crate::config::mix;
use crate::eval::evaluate;
use crate::figures::{mean_of_channels, plot_losses, save_reconstructions};
use crate::inputs::in_model_space;
use crate::observer::{BatchReport, RunInfo, TrainObserver};
use crate::optim::{named_vars, Adam};
use crate::run_data::DataOptions;
use crate::run_dir::RunDir;
use crate::saved_run::{ResumeOptions, SavedRun};
use crate::{TrainConfig, TrainError};

/// File names inside a run directory.
pub mod files {
    /// The run's configuration ([`crate::SavedRun`]).
    pub const CONFIG: &str = "config.json";
    /// The last epoch's model.
    pub const LAST_MODEL: &str = "model.safetensors";
    /// The model of the epoch with the lowest test BCE.
    pub const BEST_MODEL: &str = "best.safetensors";
    /// Optimizer moments and loop position, for `--resume` (inside each checkpoint directory).
    pub const STATE: &str = "state.safetensors";
    /// Prefix of the checkpoint directories (`checkpoint-000003/`).
    pub const CHECKPOINT_PREFIX: &str = crate::run_dir::CHECKPOINT_PREFIX;
    /// The loss curves.
    pub const LOSS_PLOT: &str = "loss.png";
    /// Test inputs above their reconstructions.
    pub const RECONSTRUCTIONS: &str = "reconstructions.png";
}

const PROGRESS_KEY: &str = "cae.progress";
/// How many test images `reconstructions.png` shows.
const SHOWN_RECONSTRUCTIONS: usize = 10;
/// A training reconstruction loss per value past this means the run has diverged: a BCE model
/// predicting 0.5 for every pixel scores ln 2 ≈ 0.69, an MSE model predicting the mean of
/// standardised data scores 1, and one that has learnt anything scores far less.
pub const DIVERGED_LOSS: f64 = 100.0;

/// `config.json`: what the run trains and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    /// The model's configuration.
    pub model: CaeConfig,
    /// How it is trained.
    pub train: TrainConfig,
    /// Which data it trains on: `mnist`, `fashion-mnist`, or the path of a directory of IDX
    /// files. A resumed run trains on this.
    pub dataset: String,
    /// How one's own dataset is read and split (unset for a named dataset or IDX directory).
    #[serde(default, skip_serializing_if = "DataOptions::is_unset")]
    pub data: DataOptions,
}

/// Where the loop stands: saved with every checkpoint so that a resumed run repeats the uninterrupted one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Progress {
    /// The epoch in progress (1-based); `epochs + 1` when finished.
    epoch: usize,
    /// Batches of `epoch` already applied.
    batches_done: usize,
    /// Sums over the applied batches of `epoch`, weighted by batch size.
    #[serde(rename = "sum_bce")]
    sum_reconstruction: f64,
    sum_penalty: f64,
    samples: usize,
    train_seconds: f64,
    adam_step: u64,
    #[serde(rename = "best_test_bce")]
    best_test_reconstruction: Option<f64>,
    /// The Adam step `best.safetensors` was saved at, to restore it from a checkpoint of that step.
    #[serde(default)]
    best_step: Option<u64>,
}

/// The result of [`Trainer::fit`].
#[derive(Debug, Clone)]
pub struct TrainSummary {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The last epoch's metrics; `None` when no epoch was trained.
    pub last: Option<EpochMetrics>,
    /// The lowest test BCE of the run.
    pub best_test_reconstruction: Option<f64>,
}

/// Trains one model, checkpointing into a run directory.
pub struct Trainer {
    run: RunConfig,
    dir: RunDir,
    device: Device,
    model: ContractiveAutoencoder,
    varmap: VarMap,
    adam: Adam,
    log: MetricsLog,
    progress: Progress,
    /// The number of the last committed checkpoint (0: none yet).
    checkpoint: u64,
}

impl Trainer {
    /// A fresh run in `run_dir`, which must not exist yet or be empty.
    pub fn new(run: RunConfig, run_dir: &Path, device: &Device) -> Result<Self, TrainError> {
        run.train.validate()?;
        run.model.validate()?;
        let dir = RunDir::create(run_dir)?;
        SavedRun {
            run: run.clone(),
            overrides: Vec::new(),
        }
        .write(dir.path())?;
        Self::start(run, dir, device)
    }

    /// The state before the first batch: weights drawn from the seed.
    fn start(run: RunConfig, dir: RunDir, device: &Device) -> Result<Self, TrainError> {
        let (model, varmap) =
            ContractiveAutoencoder::init(&run.model, run.train.seed, DType::F32, device)?;
        let adam = Adam::from_varmap(&varmap, run.train.adam_config())?;
        let log = MetricsLog::new().with_loss(run.model.loss);
        Ok(Self {
            run,
            dir,
            device: device.clone(),
            model,
            varmap,
            adam,
            log,
            progress: Progress {
                epoch: 1,
                ..Progress::default()
            },
            checkpoint: 0,
        })
    }

    /// Continues the run saved in `run_dir`, optionally with a new total number of epochs.
    pub fn resume(
        run_dir: &Path,
        epochs: Option<usize>,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let options = ResumeOptions {
            epochs,
            ..ResumeOptions::default()
        };
        Self::resume_with(run_dir, &options, device)
    }

    /// Continues the run saved in `run_dir` from its newest checkpoint (from the start if it died
    /// before its first one), with the changes in `options` recorded in its `config.json`.
    pub fn resume_with(
        run_dir: &Path,
        options: &ResumeOptions,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let dir = RunDir::open(run_dir, files::CONFIG)?;
        let mut saved = SavedRun::read(dir.path())?;
        let mut trainer = match dir.latest_checkpoint()? {
            Some(checkpoint) => Self::restore(
                saved.run.clone(),
                dir,
                checkpoint.number,
                &checkpoint.dir,
                device,
            )?,
            None => {
                if dir.join(files::STATE).exists() {
                    return Err(TrainError::RunDir {
                        path: dir.path().to_path_buf(),
                        message: format!(
                            "{} is at the top of the run directory, where cae versions before checkpoint directories kept it; this version cannot continue such a run",
                            files::STATE
                        ),
                    });
                }
                Self::start(saved.run.clone(), dir, device)?
            }
        };
        let p = &trainer.progress;
        if saved.apply(options, p.epoch, p.batches_done)? {
            saved.write(trainer.dir.path())?;
            trainer.run = saved.run;
        }
        Ok(trainer)
    }

    /// The state saved in checkpoint `number` (in `checkpoint_dir`); rewrites the exports
    /// (`model.safetensors`, `best.safetensors`, metrics) from it, since a kill may have come
    /// between its commit and theirs.
    fn restore(
        run: RunConfig,
        dir: RunDir,
        number: u64,
        checkpoint_dir: &Path,
        device: &Device,
    ) -> Result<Self, TrainError> {
        let read = |name: &str| {
            let path = checkpoint_dir.join(name);
            std::fs::read(&path)
                .map(|bytes| (bytes, path.clone()))
                .map_err(|e| TrainError::RunDir {
                    path,
                    message: format!("cannot read the checkpoint file: {e}"),
                })
        };
        let (state_bytes, state_path) = read(files::STATE)?;
        let state = tensors_from_bytes(&state_bytes, &state_path, device)?;
        let progress: Progress = state
            .metadata
            .get(PROGRESS_KEY)
            .and_then(|json| serde_json::from_str(json).ok())
            .ok_or_else(|| TrainError::RunDir {
                path: state_path.clone(),
                message: format!(
                    "no readable `{PROGRESS_KEY}` entry; the file is not a cae training state"
                ),
            })?;
        let (model_bytes, model_path) = read(files::LAST_MODEL)?;
        let loaded = model_from_bytes(&model_bytes, &model_path, device)?;
        let saved_step = loaded.metadata.get(PROGRESS_KEY).map(String::as_str);
        if saved_step != Some(progress.adam_step.to_string().as_str()) {
            return Err(TrainError::RunDir {
                path: checkpoint_dir.to_path_buf(),
                message: format!(
                    "{} records step {} and {} step {}; the checkpoint is not one consistent moment of the run",
                    files::LAST_MODEL,
                    saved_step.unwrap_or("(none)"),
                    files::STATE,
                    progress.adam_step
                ),
            });
        }
        if loaded.config != run.model {
            return Err(TrainError::RunDir {
                path: model_path,
                message: format!("the model configuration differs from {}", files::CONFIG),
            });
        }
        let (metrics_bytes, metrics_path) = read(METRICS_JSONL)?;
        let log = MetricsLog::from_jsonl(&String::from_utf8_lossy(&metrics_bytes), &metrics_path)?
            .with_loss(run.model.loss);
        if log.len() + 1 != progress.epoch {
            return Err(TrainError::RunDir {
                path: metrics_path,
                message: format!(
                    "holds {} epochs but the checkpoint is in epoch {}",
                    log.len(),
                    progress.epoch
                ),
            });
        }
        let (model, varmap) = loaded.into_trainable(DType::F32, device)?;
        let mut adam = Adam::from_varmap(&varmap, run.train.adam_config())?;
        adam.restore(&state.tensors, progress.adam_step)?;

        let export = |name: &str, bytes: &[u8]| -> Result<(), TrainError> {
            let path = dir.join(name);
            write_atomic(&path, bytes).map_err(|e| TrainError::RunDir {
                path,
                message: format!("cannot write the file: {e}"),
            })
        };
        export(files::LAST_MODEL, &model_bytes)?;
        if progress.best_step == Some(progress.adam_step) {
            export(files::BEST_MODEL, &model_bytes)?;
        }
        log.write(dir.path())?;
        Ok(Self {
            run,
            dir,
            device: device.clone(),
            model,
            varmap,
            adam,
            log,
            progress,
            checkpoint: number,
        })
    }

    /// The model as trained so far.
    pub fn model(&self) -> &ContractiveAutoencoder {
        &self.model
    }

    /// The run's configuration.
    pub fn run_config(&self) -> &RunConfig {
        &self.run
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every epoch's metrics so far.
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
        // The training set as the model takes it, standardised once rather than every batch (the
        // same bits as `prepare_inputs`); the test set as read, which evaluation and the pictures
        // prepare batch by batch.
        let raw_train = limit(train, cfg.train_limit);
        let train = in_model_space(&self.run.model, &raw_train)?;
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
        let total_steps = batches_per_epoch * cfg.epochs;
        observer.on_start(&RunInfo {
            first_epoch: self.progress.epoch,
            epochs: cfg.epochs,
            batches_per_epoch,
            train_samples: train.len(),
            test_samples: test.len(),
            parameters: cae_core::param_count(&self.run.model)?,
            device: cae_core::describe_device(&self.device),
        });

        if self.progress.epoch > cfg.epochs && !self.log.is_empty() {
            // Already complete: a kill may have come after the last checkpoint's commit and
            // before its figures, so they are redrawn (from the same model and log).
            self.write_figures(&test)?;
        }
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
                let global_step = (epoch - 1) * batches_per_epoch + batch;
                lr = cfg
                    .lr_schedule
                    .rate_at_step(cfg.learning_rate, global_step, total_steps);
                // Probes depend only on (seed, epoch, batch), so a resumed run draws the same ones.
                self.model.set_probe_seed(mix(cfg.seed, epoch, batch));
                let step = cfg.step(&self.model, &x)?;
                let (reconstruction, penalty, total) =
                    (step.reconstruction, step.penalty, step.total);
                if !total.is_finite() {
                    return Err(TrainError::NonFinite {
                        epoch,
                        batch,
                        value: total,
                        run_dir: self.dir.path().to_path_buf(),
                    });
                }
                if reconstruction > DIVERGED_LOSS {
                    return Err(TrainError::Diverged {
                        epoch,
                        batch,
                        loss: self.run.model.loss.key().to_uppercase(),
                        value: reconstruction,
                        bound: DIVERGED_LOSS,
                        run_dir: self.dir.path().to_path_buf(),
                    });
                }
                self.adam.set_learning_rate(lr);
                self.adam.step(step.gradients.grad_store())?;
                let rows = indices.len();
                let p = &mut self.progress;
                p.batches_done = batch + 1;
                p.sum_reconstruction += reconstruction * rows as f64;
                p.sum_penalty += penalty * rows as f64;
                p.samples += rows;
                p.adam_step = self.adam.step_count();
                p.train_seconds += started.elapsed().as_secs_f64();
                observer.on_batch(&BatchReport {
                    epoch,
                    batch,
                    reconstruction,
                    penalty,
                    total,
                });
                if stop.load(Ordering::SeqCst) && batch + 1 < batches_per_epoch {
                    self.save_checkpoint(epoch)?;
                    return Err(TrainError::Interrupted {
                        epoch,
                        batches_done: batch + 1,
                        run_dir: self.dir.path().to_path_buf(),
                    });
                }
            }

            observer.on_evaluate(epoch);
            let eval = evaluate(&self.model, &test, cfg.eval_batch_size, &self.device)?;
            let p = &self.progress;
            let samples = p.samples.max(1) as f64;
            let metrics = EpochMetrics {
                epoch,
                train_reconstruction: p.sum_reconstruction / samples,
                train_penalty: p.sum_penalty / samples,
                train_total: (p.sum_reconstruction + p.sum_penalty) / samples,
                test_reconstruction: eval.reconstruction,
                test_penalty: cfg.lambda * eval.jacobian_sq_norm,
                mean_jacobian_frobenius: eval.jacobian_frobenius,
                seconds: p.train_seconds,
                samples_per_second: p.samples as f64 / p.train_seconds.max(1e-9),
                learning_rate: lr,
            };
            if !metrics.test_reconstruction.is_finite() {
                return Err(TrainError::NonFinite {
                    epoch,
                    batch: batches_per_epoch,
                    value: metrics.test_reconstruction,
                    run_dir: self.dir.path().to_path_buf(),
                });
            }
            let is_best = self
                .progress
                .best_test_reconstruction
                .is_none_or(|b| metrics.test_reconstruction < b);
            self.log.push(metrics.clone());
            let adam_step = self.adam.step_count();
            self.progress = Progress {
                epoch: epoch + 1,
                adam_step,
                best_test_reconstruction: if is_best {
                    Some(metrics.test_reconstruction)
                } else {
                    self.progress.best_test_reconstruction
                },
                best_step: if is_best {
                    Some(adam_step)
                } else {
                    self.progress.best_step
                },
                ..Progress::default()
            };
            let model_bytes = self.save_checkpoint(epoch)?;
            if is_best {
                self.export(files::BEST_MODEL, &model_bytes)?;
            }
            self.write_figures(&test)?;
            observer.on_epoch_end(&metrics, is_best);
            if stop.load(Ordering::SeqCst) && epoch < cfg.epochs {
                return Err(TrainError::Interrupted {
                    epoch: epoch + 1,
                    batches_done: 0,
                    run_dir: self.dir.path().to_path_buf(),
                });
            }
        }
        Ok(TrainSummary {
            run_dir: self.dir.path().to_path_buf(),
            last: self.log.last().cloned(),
            best_test_reconstruction: self.progress.best_test_reconstruction,
        })
    }

    /// Commits a checkpoint of the current state (refusing non-finite weights), then exports
    /// its model as `model.safetensors`; returns the model file's bytes.
    fn save_checkpoint(&mut self, epoch: usize) -> Result<Vec<u8>, TrainError> {
        self.check_finite_weights(epoch)?;
        let meta = BTreeMap::from([(
            PROGRESS_KEY.to_string(),
            self.progress.adam_step.to_string(),
        )]);
        let model_bytes = model_to_bytes(&self.run.model, &self.varmap, &meta)?;
        let meta = BTreeMap::from([(
            PROGRESS_KEY.to_string(),
            // invariant: plain numbers; serde_json cannot fail on them.
            serde_json::to_string(&self.progress).expect("progress always serialises"),
        )]);
        let state_bytes = tensors_to_bytes(&self.adam.state_tensors()?, &meta)?;
        let metrics = self.log.to_jsonl();
        self.dir.commit_checkpoint(
            self.checkpoint + 1,
            &[
                (files::LAST_MODEL, &model_bytes),
                (files::STATE, &state_bytes),
                (METRICS_JSONL, &metrics),
            ],
        )?;
        self.checkpoint += 1;
        self.export(files::LAST_MODEL, &model_bytes)?;
        Ok(model_bytes)
    }

    fn check_finite_weights(&self, epoch: usize) -> Result<(), TrainError> {
        for (name, var) in named_vars(&self.varmap) {
            let values = var.as_tensor().flatten_all()?.to_vec1::<f32>()?;
            if values.iter().any(|v| !v.is_finite()) {
                return Err(TrainError::NonFiniteWeights {
                    epoch,
                    tensor: name,
                    run_dir: self.dir.path().to_path_buf(),
                });
            }
        }
        Ok(())
    }

    /// Writes one of the files users read, atomically.
    fn export(&self, name: &str, bytes: &[u8]) -> Result<(), TrainError> {
        let path = self.dir.join(name);
        write_atomic(&path, bytes).map_err(|e| TrainError::RunDir {
            path,
            message: format!("cannot write the file: {e}"),
        })
    }

    /// The metrics files and the figures, from the log and the current model.
    fn write_figures(&self, test: &Dataset) -> Result<(), TrainError> {
        self.log.write(self.dir.path())?;
        plot_losses(
            self.log.epochs(),
            self.log.loss(),
            &self.dir.join(files::LOSS_PLOT),
            &format!("CAE training, λ = {}", self.run.train.lambda),
        )?;
        self.save_reconstructions(test)
    }

    /// Test images above their reconstructions (colour as its channels' mean); none of features.
    /// `test` is as read: the reconstructions are mapped back into its units.
    fn save_reconstructions(&self, test: &Dataset) -> Result<(), TrainError> {
        let Some(channels) = test.shape().channels() else {
            tracing::info!("no {} of feature vectors", files::RECONSTRUCTIONS);
            return Ok(());
        };
        let n = SHOWN_RECONSTRUCTIONS.min(test.len());
        let x = test.to_tensor(0..n, &self.device)?;
        let recon = self
            .model
            .restore_outputs(&self.model.reconstruct(&self.model.prepare_inputs(&x)?)?)?;
        let grey = |t: &candle_core::Tensor| -> candle_core::Result<Vec<f32>> {
            let values = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
            Ok(mean_of_channels(&values, channels))
        };
        save_reconstructions(
            &grey(&x)?,
            &grey(&recon)?,
            n,
            test.cols(),
            test.rows(),
            &self.dir.join(files::RECONSTRUCTIONS),
        )?;
        Ok(())
    }
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("run_dir", &self.dir.path())
            .field("run", &self.run)
            .field("progress", &self.progress)
            .finish_non_exhaustive()
    }
}

fn limit(data: &Dataset, n: Option<usize>) -> Cow<'_, Dataset> {
    match n {
        Some(n) if n < data.len() => Cow::Owned(data.take(n)),
        _ => Cow::Borrowed(data),
    }
}
