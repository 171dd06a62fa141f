//! Training loop for contractive autoencoders: Adam, minibatches of 600, per-epoch metrics on the whole
//! test set, checkpoints that resume exactly, and figures.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use cae_core::CaeConfig;
//! use cae_data::{Dataset, DatasetSource, LoadOptions, Split};
//! use cae_train::{RunConfig, Silent, TrainConfig, Trainer};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let opts = LoadOptions::default();
//! let train = Dataset::load(&DatasetSource::Mnist, Split::Train, &opts)?;
//! let test = Dataset::load(&DatasetSource::Mnist, Split::Test, &opts)?;
//! let run = RunConfig { model: CaeConfig::preset("small")?, train: TrainConfig::default(), dataset: "mnist".into(), data: Default::default() };
//! let mut trainer = Trainer::new(run, "runs/example".as_ref(), &candle_core::Device::Cpu)?;
//! let summary = trainer.fit(&train, &test, &mut Silent, &AtomicBool::new(false))?;
//! println!("test BCE {:?}", summary.last.map(|m| m.test_reconstruction));
//! # Ok(()) }
//! ```
//!
//! # Pretraining, stacking and fine-tuning without the CLI
//! A CAE pretrained with [`Trainer`], a second layer stacked on its codes with
//! [`train_stacked_layer`] (here with the CAE+H term), and the stack fine-tuned into a classifier
//! with [`finetune`] (early stopping on the last training images), on a tiny two-class problem:
//! ```
//! use std::sync::atomic::AtomicBool;
//! use cae_core::{Activation, Architecture, CaeConfig, HessianPenalty, MlpConfig, PenaltyMethod, WeightInit};
//! use cae_data::Dataset;
//! use cae_train::{files, FinetuneConfig, RunConfig, Silent, StackRunConfig, TrainConfig, Trainer};
//! use candle_core::{DType, Device};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 300 images of 4×4 pixels: class 0 lights the top row, class 1 the left column.
//! let labels: Vec<u8> = (0..300).map(|i| (i % 2) as u8).collect();
//! let images: Vec<u8> = labels
//!     .iter()
//!     .flat_map(|&l| (0..16).map(move |p| if (l == 0 && p < 4) || (l == 1 && p % 4 == 0) { 255 } else { 0 }))
//!     .collect();
//! let data = Dataset::from_raw(images, labels, 4, 4)?;
//! let dir = tempfile::tempdir()?;
//! let (cpu, stop) = (Device::Cpu, AtomicBool::new(false));
//!
//! // 1. Pretrain a 16-8 CAE.
//! let model = CaeConfig {
//!     height: 4,
//!     width: 4,
//!     architecture: Architecture::Mlp(MlpConfig {
//!         hidden: vec![],
//!         code_dim: 8,
//!         hidden_activation: Activation::Sigmoid,
//!         code_activation: Activation::Sigmoid,
//!         tied_weights: false,
//!     }),
//!     penalty: PenaltyMethod::Exact,
//!     init: WeightInit::Pytorch,
//!     loss: cae_core::ReconstructionLoss::Bce,
//!     standardisation: None,
//! };
//! let train = TrainConfig { epochs: 2, batch_size: 50, ..TrainConfig::default() };
//! let run = RunConfig { model, train: train.clone(), dataset: "toy".into(), data: Default::default() };
//! Trainer::new(run, &dir.path().join("cae1"), &cpu)?.fit(&data, &data, &mut Silent, &stop)?;
//! let cae1 = cae_core::read_model(&dir.path().join("cae1").join(files::LAST_MODEL), &cpu)?;
//!
//! // 2. Stack a 6-unit CAE+H layer on its codes: one model, encoder 16 → 8 → 6.
//! let h = HessianPenalty { gamma: 0.1, sigma: 0.1, copies: 2 };
//! let layer = TrainConfig { hessian: Some(h), ..train };
//! let run = StackRunConfig::new("cae1", &cae1.config, 6, layer, "toy")?;
//! let cae2 = cae_train::train_stacked_layer(
//!     &cae1, &run, &data, &data, &dir.path().join("cae2"), &cpu, &mut Silent, &stop,
//! )?;
//!
//! // 3. Fine-tune the stack's encoder and a softmax layer; the last 50 images validate.
//! let cfg = FinetuneConfig { max_epochs: 30, batch_size: 25, learning_rate: 1e-2, validation: 50, ..FinetuneConfig::default() };
//! let out = dir.path().join("classifier.safetensors");
//! let summary = cae_train::finetune(&cae2, &cfg, &data, &out, &cpu, &mut |_| {})?;
//! let classifier = cae_core::read_classifier(&out, &cpu)?.classifier(DType::F32, &cpu)?;
//! let error = cae_train::error_rate(&classifier, &data, 0..data.len(), &cpu)?;
//! assert_eq!((summary.best_validation_error, error), (Some(0.0), 0.0));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod analysis;
pub mod artifacts;
mod config;
mod dropout;
mod error;
mod eval;
pub mod figures;
mod finetune;
mod inputs;
mod observer;
pub mod optim;
mod run_data;
mod run_dir;
mod saved_run;
mod sgd;
mod stack;
mod tangent_cache;
mod trainer;

pub use config::{LrSchedule, TrainConfig};
pub use dropout::Dropout;
pub use error::TrainError;
pub use eval::{evaluate, Evaluation};
pub use finetune::{
    error_rate, finetune, FinetuneConfig, FinetuneEpoch, FinetuneOptimizer, FinetuneSummary,
    TangentProp, FINETUNE_KEY,
};
pub use inputs::{fit_standardisation, in_model_space};
pub use observer::{BatchReport, RunInfo, Silent, TrainObserver};
pub use optim::{Adam, AdamConfig, AdamParams};
pub use run_data::{DataOptions, TestSource};
pub use run_dir::{check_fresh as check_fresh_run_dir, SLOW_CHECKPOINT_ENV};
pub use saved_run::{Change, Override, ResumeOptions, SavedRun};
pub use sgd::{Sgd, SgdConfig};
pub use stack::{
    base_model_path, loaded_from_varmap, train_stacked_layer, StackRunConfig, LAYER_MODEL,
};
pub use trainer::{files, RunConfig, TrainSummary, Trainer, DIVERGED_LOSS};
