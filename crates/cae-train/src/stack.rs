//! Greedy layer-wise stacking (Rifai et al. 2011): a one-layer CAE trained on the codes of a trained
//! MLP CAE, then saved with it as one model whose encoder is the stack (see
//! [`cae_core::stack_models`]).
//!
//! The codes are computed batch by batch from the frozen model below (nothing the size of the
//! training set is held). A run directory holds `config.json` ([`StackRunConfig`]),
//! `metrics.jsonl`/`metrics.csv` (the layer's BCE and penalty on the codes), `layer.safetensors`
//! (the new layer alone) and `model.safetensors` (the stack), written atomically after every
//! epoch. A stacked run cannot be resumed: an interrupted one keeps its last finished epoch.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use cae_core::{
    layer_on_codes, stack_models, sum_f64, CaeConfig, ContractiveAutoencoder, LoadedModel,
};
use cae_data::{Batcher, Dataset};
use candle_core::{DType, Device};
use candle_nn::{Optimizer, VarMap};
use serde::{Deserialize, Serialize};

use crate::artifacts::{write_json, EpochMetrics, MetricsLog};
use crate::config::mix;
use crate::figures::plot_losses;
use crate::observer::{BatchReport, RunInfo, TrainObserver};
use crate::optim::Adam;
use crate::trainer::files;
use crate::{DataOptions, TrainConfig, TrainError};

/// The new layer alone, in a stacked run's directory.
pub const LAYER_MODEL: &str = "layer.safetensors";

/// `config.json` of a stacked run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackRunConfig {
    /// The model the layer is stacked on, as the user named it (informational).
    pub base: String,
    /// The new layer (input: the base's codes).
    pub layer: CaeConfig,
    /// How the layer is trained.
    pub train: TrainConfig,
    /// The dataset, as the run records it.
    pub dataset: String,
    /// How one's own dataset is read and split (unset for a named dataset or IDX directory);
    /// set it after [`StackRunConfig::new`].
    #[serde(default, skip_serializing_if = "DataOptions::is_unset")]
    pub data: DataOptions,
}

impl StackRunConfig {
    /// Code units of a stacked layer when none is chosen: 1000, the width of the first layer of the
    /// default preset (Rifai et al. 2011 stack layers of equal width).
    pub const DEFAULT_CODE_DIM: usize = 1000;

    /// A layer of `code_dim` units on `base`'s codes, trained with `train`.
    pub fn new(
        base_name: &str,
        base: &CaeConfig,
        code_dim: usize,
        train: TrainConfig,
        dataset: &str,
    ) -> Result<Self, TrainError> {
        Ok(Self {
            base: base_name.into(),
            layer: layer_on_codes(base, code_dim)?,
            train,
            dataset: dataset.into(),
            data: DataOptions::default(),
        })
    }
}

/// Trains the layer of `run` on `base`'s codes of `train`, measuring it on the codes of `test`
/// after every epoch; writes the run directory `run_dir` (which must be new or empty) and
/// returns the stack. When `stop` becomes true, the run ends after the current epoch's files are
/// written, with [`TrainError::Interrupted`] if epochs were left.
#[allow(clippy::too_many_arguments)]
pub fn train_stacked_layer(
    base: &LoadedModel,
    run: &StackRunConfig,
    train: &Dataset,
    test: &Dataset,
    run_dir: &Path,
    device: &Device,
    observer: &mut dyn TrainObserver,
    stop: &AtomicBool,
) -> Result<LoadedModel, TrainError> {
    let cfg = &run.train;
    cfg.validate()?;
    let below = base.model(DType::F32, device)?;
    if train.is_empty() || test.is_empty() || train.image_dim() != below.input_dim() {
        return Err(TrainError::InvalidConfig(format!(
            "the model below takes {} inputs per sample; the training set has {} samples of {} values (test: {})",
            below.input_dim(),
            train.len(),
            train.image_dim(),
            test.len()
        )));
    }
    // Held for the run: no other process writes here meanwhile.
    let _lock = crate::run_dir::RunDir::create(run_dir)?;
    write_json(&run_dir.join(files::CONFIG), run)?;
    let (layer, varmap) = ContractiveAutoencoder::init(&run.layer, cfg.seed, DType::F32, device)?;
    let mut adam = Adam::from_varmap(&varmap, cfg.adam_config())?;
    let batcher = Batcher::new(cfg.batch_size).shuffle(cfg.seed);
    let batches = batcher.num_batches(train.len());
    observer.on_start(&RunInfo {
        first_epoch: 1,
        epochs: cfg.epochs,
        batches_per_epoch: batches,
        train_samples: train.len(),
        test_samples: test.len(),
        parameters: cae_core::param_count(&run.layer)?,
        device: cae_core::describe_device(device),
    });
    let mut log = MetricsLog::new();
    let mut stack = None;
    for epoch in 1..=cfg.epochs {
        observer.on_epoch_start(epoch);
        let order = batcher.order(train.len(), epoch);
        let started = Instant::now();
        let (mut reconstruction_sum, mut penalty_sum) = (0.0, 0.0);
        for (batch, indices) in order.chunks(cfg.batch_size).enumerate() {
            let x = below.prepare_inputs(&train.gather_tensor(indices, device)?)?;
            let codes = below.encode(&x)?;
            layer.set_probe_seed(mix(cfg.seed, epoch, batch));
            let step = cfg.step(&layer, &codes)?;
            if !step.total.is_finite() {
                return Err(TrainError::NonFinite {
                    epoch,
                    batch,
                    value: step.total,
                    run_dir: run_dir.to_path_buf(),
                });
            }
            adam.step(step.gradients.grad_store())?;
            reconstruction_sum += step.reconstruction * indices.len() as f64;
            penalty_sum += step.penalty * indices.len() as f64;
            observer.on_batch(&BatchReport {
                epoch,
                batch,
                reconstruction: step.reconstruction,
                penalty: step.penalty,
                total: step.total,
            });
        }
        let seconds = started.elapsed().as_secs_f64();
        observer.on_evaluate(epoch);
        let (test_reconstruction, test_sq, test_fro) =
            measure_on_codes(&below, &layer, test, device)?;
        let n = train.len() as f64;
        let metrics = EpochMetrics {
            epoch,
            train_reconstruction: reconstruction_sum / n,
            train_penalty: penalty_sum / n,
            train_total: (reconstruction_sum + penalty_sum) / n,
            test_reconstruction,
            test_penalty: cfg.lambda * test_sq,
            mean_jacobian_frobenius: test_fro,
            seconds,
            samples_per_second: n / seconds.max(1e-9),
            learning_rate: cfg.learning_rate,
        };
        log.push(metrics.clone());
        let top = loaded_from_varmap(&run.layer, &varmap)?;
        let extra = BTreeMap::from([("cae.stacked_on".to_string(), run.base.clone())]);
        top.save(&run_dir.join(LAYER_MODEL), &extra)?;
        let stacked = stack_models(base, &top)?;
        stacked.save(&run_dir.join(files::LAST_MODEL), &extra)?;
        log.write(run_dir)?;
        plot_losses(
            log.epochs(),
            log.loss(),
            &run_dir.join(files::LOSS_PLOT),
            &format!("stacked CAE layer, λ = {}", cfg.lambda),
        )?;
        stack = Some(stacked);
        observer.on_epoch_end(&metrics, false);
        if stop.load(Ordering::SeqCst) && epoch < cfg.epochs {
            return Err(TrainError::Interrupted {
                epoch: epoch + 1,
                batches_done: 0,
                run_dir: run_dir.to_path_buf(),
            });
        }
    }
    stack.ok_or_else(|| TrainError::InvalidConfig("no epoch was trained".into()))
}

/// The layer's mean BCE, mean `‖J‖²_F` and mean `‖J‖_F` on the codes of all of `data`.
fn measure_on_codes(
    below: &ContractiveAutoencoder,
    layer: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<(f64, f64, f64), TrainError> {
    // Summed in f64, then divided.
    let (mut bce, mut terms, mut sq, mut fro) = (0.0, 0usize, 0.0, 0.0);
    for start in (0..data.len()).step_by(cae_core::AUTOGRAD_ROWS_PER_PASS) {
        let end = (start + cae_core::AUTOGRAD_ROWS_PER_PASS).min(data.len());
        let x = below.prepare_inputs(&data.to_tensor(start..end, device)?)?;
        let codes = below.encode(&x)?;
        let loss = layer.loss(&codes, 0.0)?;
        bce += sum_f64(&loss.reconstruction_elements)?;
        terms += loss.reconstruction_elements.elem_count();
        sq += sum_f64(&loss.sample_jacobian_sq_norms)?;
        fro += sum_f64(&loss.sample_jacobian_sq_norms.sqrt()?)?;
    }
    let n = data.len() as f64;
    Ok((bce / terms.max(1) as f64, sq / n, fro / n))
}

/// The weights in `varmap` as a loaded model of `config`.
pub fn loaded_from_varmap(config: &CaeConfig, varmap: &VarMap) -> Result<LoadedModel, TrainError> {
    let tensors = varmap
        .data()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect::<HashMap<_, _>>();
    Ok(LoadedModel {
        config: config.clone(),
        tensors,
        metadata: HashMap::new(),
    })
}

/// Where a stacked run's base model is: a model file, or a run directory's `model.safetensors`.
pub fn base_model_path(run_or_model: &Path) -> PathBuf {
    if run_or_model.is_dir() {
        run_or_model.join(files::LAST_MODEL)
    } else {
        run_or_model.to_path_buf()
    }
}
