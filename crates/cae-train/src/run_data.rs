//! How a run reads its own data beyond the dataset's path: the reading options of an image folder,
//! `.npy` array or CSV table, and where its test set comes from. Recorded in `config.json`, so a
//! resumed run reads the same samples and holds out the same test set.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The reading options and test split of a run's dataset; all unset for a named dataset or an
/// IDX directory (which `config.json` then leaves out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DataOptions {
    /// A `.npy` file of labels for a `.npy` dataset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<PathBuf>,
    /// The CSV column holding the labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_column: Option<String>,
    /// Channels an image folder is read with (1: grey, 3: colour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<usize>,
    /// Height and width an image folder is resized to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<(usize, usize)>,
    /// Where the test set comes from; `None`: the dataset's own test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<TestSource>,
}

/// Where a run's test set comes from, when not from the dataset's own test split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TestSource {
    /// A separate dataset, by its path.
    Dataset {
        /// The test dataset's path.
        path: String,
    },
    /// A seeded random fraction of the dataset, held out.
    Fraction {
        /// The fraction held out.
        fraction: f64,
        /// The seed of the draw.
        seed: u64,
    },
}

impl DataOptions {
    /// Whether nothing is set (a named dataset or an IDX directory).
    pub fn is_unset(&self) -> bool {
        *self == DataOptions::default()
    }
}
