//! Dataset options shared by the subcommands that read a dataset (`train`, `eval`).
use std::path::PathBuf;

use anyhow::Result;
use cae_data::{DataError, Dataset, DatasetSource, LoadOptions, Split, TestSplit, TrainTest};
use clap::Args;

#[derive(Debug, Clone, Args)]
pub struct DataArgs {
    /// `mnist`, `fashion-mnist`, or a directory of IDX files (train-* and t10k-*).
    #[arg(long, default_value_t = DatasetSource::Mnist)]
    pub dataset: DatasetSource,
    /// Where datasets are cached (default: $CAE_DATA_DIR, else the per-user cache directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Never download; fail with instructions if the data is missing.
    #[arg(long)]
    pub offline: bool,
}

impl DataArgs {
    /// One split of the dataset, downloaded on a cache miss unless `--offline`.
    pub fn load(&self, split: Split, progress: bool) -> Result<Dataset> {
        Dataset::load(&self.dataset, split, &self.options(progress)).map_err(hint)
    }

    /// The training set and the test set `test` names, downloaded on a cache miss unless
    /// `--offline`.
    pub fn load_train_test(&self, test: &TestSplit, progress: bool) -> Result<TrainTest> {
        cae_data::load_train_test(&self.dataset, test, &self.options(progress)).map_err(hint)
    }

    fn options(&self, progress: bool) -> LoadOptions {
        LoadOptions {
            cache_dir: self.data_dir.clone(),
            download: !self.offline,
            progress,
            ..LoadOptions::default()
        }
    }
}

/// The library's facts, with the flag that names the data root where it helps.
fn hint(e: DataError) -> anyhow::Error {
    match e {
        DataError::Missing { .. } | DataError::Download { .. } | DataError::NoCacheDir { .. } => {
            anyhow::anyhow!("{e}\n  hint: --data-dir DIR names the data root for this command")
        }
        other => other.into(),
    }
}
