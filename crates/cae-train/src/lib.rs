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
//! let run = RunConfig { model: CaeConfig::preset("small")?, train: TrainConfig::default(), dataset: "mnist".into() };
//! let mut trainer = Trainer::new(run, "runs/example".as_ref(), &candle_core::Device::Cpu)?;
//! let summary = trainer.fit(&train, &test, &mut Silent, &AtomicBool::new(false))?;
//! println!("test BCE {:?}", summary.last.map(|m| m.test_bce));
//! # Ok(()) }
//! ```

pub mod analysis;
pub mod artifacts;
mod config;
mod error;
mod eval;
pub mod figures;
mod observer;
pub mod optim;
mod run_dir;
mod saved_run;
mod trainer;

pub use config::{LrSchedule, TrainConfig};
pub use error::TrainError;
pub use eval::{evaluate, Evaluation};
pub use observer::{BatchReport, RunInfo, Silent, TrainObserver};
pub use optim::{Adam, AdamParams};
pub use run_dir::{check_fresh as check_fresh_run_dir, SLOW_CHECKPOINT_ENV};
pub use saved_run::{Change, Override, ResumeOptions, SavedRun};
pub use trainer::{files, RunConfig, TrainSummary, Trainer, DIVERGED_BCE};
