//! Supervised fine-tuning (Rifai et al. 2011): a pretrained CAE's encoder plus a softmax layer,
//! every weight trained on labels with Adam (or SGD with momentum), stopped early on a
//! validation split (the last images of the training set; the test set plays no part). With
//! [`TangentProp`] it is the Manifold Tangent Classifier (Rifai et al., NIPS 2011): the
//! pretrained encoder's leading Jacobian directions at each training point are its tangents, and
//! the classifier's output is penalised for changing along them.
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use cae_core::{save_classifier, Classifier, ClassifierConfig, LoadedModel};
use cae_data::Dataset;
use candle_core::{DType, Device, Tensor};
use candle_nn::{Optimizer, VarBuilder};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dropout::DropoutMasks;
use crate::optim::AdamConfig;
use crate::tangent_cache::TangentCache;
use crate::{Adam, AdamParams, Dropout, LrSchedule, Sgd, SgdConfig, TrainError};

/// Metadata key of a classifier file holding its [`FinetuneConfig`] as JSON.
pub const FINETUNE_KEY: &str = "cae.finetune";

/// The Manifold Tangent Classifier's penalty: `weight × Σ_i ‖∂p/∂x · u_i‖²` over the `tangents`
/// leading right singular directions `u_i` of the pretrained encoder's Jacobian at each training
/// point (found by `iterations` steps of subspace iteration, once, before fine-tuning).
///
/// With `probes`, each step propagates that many random combinations `v = Σ_i s_i u_i / √probes`
/// of each point's tangents (signs `s_i = ±1` drawn afresh) instead of every tangent: since
/// `E[s_i s_j] = δ_ij`, `Σ_v ‖∂p/∂x · v‖²` is an unbiased estimate of the penalty (and its
/// gradient of the penalty's gradient), at `probes / tangents` of the cost.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TangentProp {
    /// Weight of the penalty in the objective.
    pub weight: f64,
    /// Tangents per training point.
    pub tangents: usize,
    /// Subspace-iteration steps that find them.
    pub iterations: usize,
    /// Random sign combinations of the tangents per point and step; `None`: every tangent.
    /// Classifier files written before it was a setting read as `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probes: Option<usize>,
}

impl TangentProp {
    /// Tangents per point unless chosen: the Manifold Tangent Classifier paper's MNIST setting.
    pub const DEFAULT_TANGENTS: usize = 10;
    /// Subspace-iteration steps unless chosen.
    pub const DEFAULT_ITERATIONS: usize = 10;
}

/// The optimiser of fine-tuning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FinetuneOptimizer {
    /// Adam with [`FinetuneConfig::adam`]'s settings.
    #[default]
    Adam,
    /// SGD with heavy-ball momentum (see [`Sgd`]): gradient descent, as the CAE papers fine-tuned.
    Sgd {
        /// Momentum in `[0, 1)`; 0 is plain SGD.
        momentum: f64,
    },
}

/// How a classifier is fine-tuned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneConfig {
    /// The most epochs; fewer when the validation error stops improving.
    pub max_epochs: usize,
    /// Epochs without a lower validation error before stopping.
    pub patience: usize,
    /// Samples per step.
    pub batch_size: usize,
    /// The optimiser's learning rate.
    pub learning_rate: f64,
    /// How the learning rate moves over `max_epochs` (a run stopped early stops on the way).
    /// Classifier files written before it was a setting read as [`LrSchedule::Constant`].
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// Adam's other hyper-parameters; their decoupled weight decay applies to SGD too.
    pub adam: AdamParams,
    /// Adam or SGD. Classifier files written before it was a setting read as Adam.
    #[serde(default)]
    pub optimizer: FinetuneOptimizer,
    /// Dropout of the inputs and of the code while training. Classifier files written before it
    /// was a setting read as no dropout.
    #[serde(default)]
    pub dropout: Dropout,
    /// The last this many training images are the validation split, not trained on. 0: no
    /// split; every image is trained on for `max_epochs` and the last epoch is kept (the final
    /// run on all the data, once the epochs and the rest were chosen on a split).
    pub validation: usize,
    /// Seeds the softmax layer's weights and the minibatch order.
    pub seed: u64,
    /// Use only the first N training images (before the validation split is taken).
    pub train_limit: Option<usize>,
    /// The Manifold Tangent Classifier's penalty; `None`: plain fine-tuning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tangent_prop: Option<TangentProp>,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            max_epochs: 50,
            patience: 5,
            batch_size: 100,
            learning_rate: 1e-3,
            lr_schedule: LrSchedule::Constant,
            adam: AdamParams::default(),
            optimizer: FinetuneOptimizer::Adam,
            dropout: Dropout::default(),
            validation: 10_000,
            seed: 42,
            train_limit: None,
            tangent_prop: None,
        }
    }
}

impl FinetuneConfig {
    /// Rejects settings that cannot train, before any work is done.
    pub fn validate(&self) -> Result<(), TrainError> {
        let bad = |m: String| Err(TrainError::InvalidConfig(m));
        if self.max_epochs == 0 || self.patience == 0 || self.batch_size == 0 {
            return bad("epochs, patience and batch size must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "the learning rate must be positive, got {}",
                self.learning_rate
            ));
        }
        self.lr_schedule.validate()?;
        self.adam.validate()?;
        if let FinetuneOptimizer::Sgd { momentum } = self.optimizer {
            self.sgd(momentum).validate()?;
        }
        self.dropout.validate()?;
        if self.train_limit == Some(0) {
            return bad("the training limit must be at least 1".into());
        }
        if let Some(t) = &self.tangent_prop {
            if !(t.weight.is_finite() && t.weight >= 0.0) || t.tangents == 0 || t.probes == Some(0)
            {
                return bad(format!(
                    "tangent propagation needs a weight ≥ 0, at least one tangent and at least one probe, got {t:?}"
                ));
            }
        }
        Ok(())
    }

    /// SGD with `momentum` and this configuration's learning rate and weight decay.
    fn sgd(&self, momentum: f64) -> SgdConfig {
        SgdConfig {
            learning_rate: self.learning_rate,
            momentum,
            weight_decay: self.adam.weight_decay,
        }
    }
}

/// The chosen optimiser (candle's `Optimizer` trait is not object-safe).
enum Stepper {
    Adam(Adam),
    Sgd(Sgd),
}

impl Stepper {
    fn set_learning_rate(&mut self, lr: f64) {
        match self {
            Self::Adam(o) => o.set_learning_rate(lr),
            Self::Sgd(o) => o.set_learning_rate(lr),
        }
    }

    fn backward_step(&mut self, loss: &Tensor) -> candle_core::Result<()> {
        match self {
            Self::Adam(o) => o.backward_step(loss),
            Self::Sgd(o) => o.backward_step(loss),
        }
    }
}

/// One epoch of fine-tuning.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FinetuneEpoch {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean cross-entropy over the epoch's batches.
    pub train_loss: f64,
    /// Mean tangent-propagation penalty (unweighted); 0 without tangent propagation.
    pub tangent_penalty: f64,
    /// Share of the validation split classified wrong after the epoch; `None` without a split.
    pub validation_error: Option<f64>,
    /// Wall-clock seconds of the epoch.
    pub seconds: f64,
}

/// The result of [`finetune`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSummary {
    /// Every epoch trained, first to last.
    pub epochs: Vec<FinetuneEpoch>,
    /// The epoch whose weights were saved (lowest validation error; the last without a split).
    pub best_epoch: usize,
    /// The kept epoch's validation error; `None` without a split.
    pub best_validation_error: Option<f64>,
    /// Seconds spent finding the tangents (0 without tangent propagation).
    pub tangent_seconds: f64,
    /// The classifier file written.
    pub classifier: PathBuf,
}

/// Fine-tunes `base`'s encoder and a new softmax layer on the labels of `train` (less its last
/// `cfg.validation` images, the validation split) and writes the weights of the epoch with the
/// lowest validation error to the classifier file `out`, atomically, as soon as they are found
/// (without a split, every epoch's, so the file holds the last epoch finished). `on_epoch` sees
/// every epoch.
pub fn finetune(
    base: &LoadedModel,
    cfg: &FinetuneConfig,
    train: &Dataset,
    out: &Path,
    device: &Device,
    on_epoch: &mut dyn FnMut(&FinetuneEpoch),
) -> Result<FinetuneSummary, TrainError> {
    cfg.validate()?;
    let data = match cfg.train_limit {
        Some(n) if n < train.len() => Cow::Owned(train.take(n)),
        _ => Cow::Borrowed(train),
    };
    if cfg.validation >= data.len() || data.image_dim() != base.config.input_dim() {
        return Err(TrainError::InvalidConfig(format!(
            "fine-tuning needs images of {} pixels and more than the {} validation images; the training set has {} images of {} pixels",
            base.config.input_dim(),
            cfg.validation,
            data.len(),
            data.image_dim()
        )));
    }
    let fit = data.len() - cfg.validation;
    let classes = data.num_classes().max(2);
    let weights = LoadedModel {
        config: base.config.clone(),
        tensors: base.tensors.clone(),
        metadata: HashMap::new(),
    };
    // The variables are copies: `base` stays as it was.
    let (_, varmap) = weights.into_trainable(DType::F32, device)?;
    Classifier::init_head(&varmap, &base.config, classes, cfg.seed, DType::F32, device)?;
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    let classifier = Classifier::new(&base.config, classes, vb)?;
    let mut optimizer = match cfg.optimizer {
        FinetuneOptimizer::Adam => Stepper::Adam(Adam::from_varmap(
            &varmap,
            AdamConfig {
                params: cfg.adam,
                learning_rate: cfg.learning_rate,
            },
        )?),
        FinetuneOptimizer::Sgd { momentum } => {
            Stepper::Sgd(Sgd::from_varmap(&varmap, cfg.sgd(momentum))?)
        }
    };

    let tangent_started = Instant::now();
    let tangents = match &cfg.tangent_prop {
        Some(t) => Some(TangentCache::compute(
            base, &data, fit, t, cfg.seed, device,
        )?),
        None => None,
    };
    let tangent_seconds = tangents
        .as_ref()
        .map_or(0.0, |_| tangent_started.elapsed().as_secs_f64());

    let head = ClassifierConfig { classes };
    let extra = BTreeMap::from([(
        FINETUNE_KEY.to_string(),
        // invariant: plain numbers and options; serde_json cannot fail on them.
        serde_json::to_string(cfg).expect("a config always serialises"),
    )]);
    let batcher = cae_data::Batcher::new(cfg.batch_size).shuffle(cfg.seed);
    let mut dropout = DropoutMasks::new(cfg.dropout, cfg.seed);
    // A stream apart from the shuffling's and the dropout masks'.
    let mut probe_signs = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7A9_9E47);
    let (input_dim, code_dim) = (base.config.input_dim(), classifier.autoencoder().code_dim());
    let hidden_widths = classifier.autoencoder().hidden_widths();
    let mut epochs = Vec::new();
    let (mut best_epoch, mut best_error) = (0, f64::INFINITY);
    let steps_per_epoch = fit.div_ceil(cfg.batch_size);
    let total_steps = cfg.max_epochs * steps_per_epoch;
    for epoch in 1..=cfg.max_epochs {
        let started = Instant::now();
        let (mut loss_sum, mut penalty_sum) = (0.0, 0.0);
        for (i, indices) in batcher.order(fit, epoch).chunks(cfg.batch_size).enumerate() {
            let step = (epoch - 1) * steps_per_epoch + i;
            let lr = cfg
                .lr_schedule
                .rate_at_step(cfg.learning_rate, step, total_steps);
            optimizer.set_learning_rate(lr);
            let x = data.gather_tensor(indices, device)?;
            let labels = label_tensor(&data, indices, device)?;
            // No masks (and no draws) where dropout is off: the plain cross-entropy.
            let thinning =
                dropout.draw(indices.len(), input_dim, &hidden_widths, code_dim, device)?;
            let mut loss = classifier.dropout_cross_entropy(&x, &labels, &thinning)?;
            loss_sum += scalar(&loss)? * indices.len() as f64;
            if let (Some(cache), Some(t)) = (&tangents, &cfg.tangent_prop) {
                let u = match t.probes {
                    None => cache.gather(indices, device)?,
                    Some(m) => cache.gather_probes(indices, m, &mut probe_signs, device)?,
                };
                let penalty = classifier.tangent_propagation(&x, &u)?.mean(0)?;
                penalty_sum += scalar(&penalty)? * indices.len() as f64;
                loss = (loss + (penalty * t.weight)?)?;
            }
            optimizer.backward_step(&loss)?;
        }
        let validation_error = match cfg.validation {
            0 => None,
            _ => Some(error_rate(&classifier, &data, fit..data.len(), device)?),
        };
        let report = FinetuneEpoch {
            epoch,
            train_loss: loss_sum / fit as f64,
            tangent_penalty: penalty_sum / fit as f64,
            validation_error,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_epoch(&report);
        epochs.push(report);
        // Without a split every epoch is the best so far: the last one is kept.
        let error = validation_error.unwrap_or(f64::NEG_INFINITY);
        if error < best_error || validation_error.is_none() {
            (best_epoch, best_error) = (epoch, error);
            save_classifier(out, &base.config, &head, &varmap, &extra)?;
        } else if epoch - best_epoch >= cfg.patience {
            break;
        }
    }
    Ok(FinetuneSummary {
        epochs,
        best_epoch,
        best_validation_error: best_error.is_finite().then_some(best_error),
        tangent_seconds,
        classifier: out.to_path_buf(),
    })
}

/// The share of `range` of `data` that `classifier` gets wrong.
pub fn error_rate(
    classifier: &Classifier,
    data: &Dataset,
    range: std::ops::Range<usize>,
    device: &Device,
) -> Result<f64, TrainError> {
    let mut wrong = 0usize;
    for start in range.clone().step_by(crate::analysis::EVAL_BATCH) {
        let end = (start + crate::analysis::EVAL_BATCH).min(range.end);
        let predicted = classifier.predict(&data.to_tensor(start..end, device)?.detach())?;
        wrong += predicted
            .iter()
            .zip(&data.labels()[start..end])
            .filter(|(p, l)| **p != u32::from(**l))
            .count();
    }
    Ok(wrong as f64 / range.len().max(1) as f64)
}

fn label_tensor(data: &Dataset, indices: &[usize], device: &Device) -> Result<Tensor, TrainError> {
    let labels: Vec<u32> = indices
        .iter()
        .map(|&i| u32::from(data.labels()[i]))
        .collect();
    Ok(Tensor::from_vec(labels, indices.len(), device)?)
}

fn scalar(t: &Tensor) -> candle_core::Result<f64> {
    t.to_dtype(DType::F64)?.to_scalar::<f64>()
}
