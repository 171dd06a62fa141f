//! Dataset options shared by the subcommands that read a dataset (`train`, `eval`).
use std::path::PathBuf;

use anyhow::Result;
use cae_data::{DataError, Dataset, DatasetSource, LoadOptions, Split};
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
        let opts = LoadOptions {
            cache_dir: self.data_dir.clone(),
            download: !self.offline,
            progress,
            ..LoadOptions::default()
        };
        Dataset::load(&self.dataset, split, &opts).map_err(|e| match e {
            DataError::Missing { .. }
            | DataError::Download { .. }
            | DataError::NoCacheDir { .. } => {
                anyhow::anyhow!("{e}\n  hint: --data-dir DIR names the data root for this command")
            }
            other => other.into(),
        })
    }
}
