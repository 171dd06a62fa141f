//! `config.json`: a run's configuration, the truth when it is resumed, and the changes made to it
//! on resume (more epochs, a new learning rate), each recorded with the moment it took effect.
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::artifacts::{read_json, write_json};
use crate::trainer::{files, RunConfig};
use crate::TrainError;

/// The contents of `config.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedRun {
    /// The model, training settings and dataset of the run.
    #[serde(flatten)]
    pub run: RunConfig,
    /// Changes made on resume, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<Override>,
}

/// One setting changed when the run was resumed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The epoch in progress when the change took effect (1-based).
    pub at_epoch: usize,
    /// Batches of that epoch already trained with the old setting.
    pub at_batch: usize,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

/// The settings that may change on resume.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "setting", rename_all = "snake_case")]
pub enum Change {
    /// A new total number of epochs.
    Epochs {
        /// The total before.
        from: usize,
        /// The total after.
        to: usize,
    },
    /// A new base learning rate (the schedule, if any, applies to it from then on).
    LearningRate {
        /// The rate before.
        from: f64,
        /// The rate after.
        to: f64,
    },
}

/// What may change when a run is resumed; `None` keeps the saved value.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ResumeOptions {
    /// The new total number of epochs (not a number of further epochs).
    pub epochs: Option<usize>,
    /// The new base learning rate.
    pub learning_rate: Option<f64>,
}

impl SavedRun {
    /// Reads `dir/config.json`, checking first that `dir` is a run directory.
    pub fn read(dir: &Path) -> Result<Self, TrainError> {
        let not_a_run = |reason: String| TrainError::NotARun {
            path: dir.to_path_buf(),
            reason,
        };
        if !dir.is_dir() {
            return Err(not_a_run(if dir.exists() {
                "it is not a directory".into()
            } else {
                "it does not exist".into()
            }));
        }
        let path = dir.join(files::CONFIG);
        if !path.is_file() {
            return Err(not_a_run(format!("it has no {}", files::CONFIG)));
        }
        let saved: SavedRun = read_json(&path)?;
        saved.run.model.validate()?;
        saved.run.train.validate()?;
        Ok(saved)
    }

    /// Writes `config.json` into `dir`, atomically.
    pub fn write(&self, dir: &Path) -> Result<(), TrainError> {
        Ok(write_json(&dir.join(files::CONFIG), self)?)
    }

    /// Applies `options` at the loop position (`epoch`, `batches_done`), recording each real
    /// change; returns whether anything changed. A total smaller than what is already trained is
    /// refused.
    pub fn apply(
        &mut self,
        options: &ResumeOptions,
        epoch: usize,
        batches_done: usize,
    ) -> Result<bool, TrainError> {
        let mut changes = Vec::new();
        let train = &mut self.run.train;
        if let Some(to) = options.epochs.filter(|&e| e != train.epochs) {
            let trained = if batches_done > 0 { epoch } else { epoch - 1 };
            if to < trained.max(1) {
                return Err(TrainError::InvalidConfig(format!(
                    "a total of {to} epochs is fewer than the {trained} this run has already trained{}",
                    if batches_done > 0 { " (counting the one in progress)" } else { "" }
                )));
            }
            changes.push(Change::Epochs {
                from: train.epochs,
                to,
            });
            train.epochs = to;
        }
        if let Some(to) = options
            .learning_rate
            .filter(|&lr| lr != train.learning_rate)
        {
            changes.push(Change::LearningRate {
                from: train.learning_rate,
                to,
            });
            train.learning_rate = to;
        }
        train.validate()?;
        let changed = !changes.is_empty();
        self.overrides
            .extend(changes.into_iter().map(|change| Override {
                at_epoch: epoch,
                at_batch: batches_done,
                change,
            }));
        Ok(changed)
    }
}
