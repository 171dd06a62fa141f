//! Datasets for cae: MNIST, Fashion-MNIST and any directory of IDX files (download, verify,
//! cache, parse), and your own data: a folder of PNG/JPEG images (optionally one subdirectory per
//! class), a NumPy `.npy` array, or a CSV table of numbers; all through one [`Dataset`] type,
//! kept in its compact type and batched as `f32`.
//!
//! ```no_run
//! use cae_data::{Batcher, Dataset, DatasetSource, LoadOptions, Split};
//! use candle_core::Device;
//!
//! // Downloads MNIST into ~/.cache/cae/mnist on first use (or $CAE_DATA_DIR/mnist), verifies
//! // it against pinned SHA-256 sums, and keeps the images as bytes.
//! let train = Dataset::load(&DatasetSource::Mnist, Split::Train, &LoadOptions::default())?;
//! assert_eq!((train.len(), train.image_dim()), (60_000, 784));
//!
//! let device = Device::Cpu;
//! let batcher = Batcher::new(600).shuffle(42);
//! for epoch in 0..2 {
//!     for batch in batcher.epoch(&train, epoch, &device) {
//!         let batch = batch?; // batch.images: f32 [600, 784] in [0, 1]
//!         # let _ = batch;
//!     }
//! }
//!
//! // A directory of train-*/t10k-* IDX files works the same way, without checksums.
//! let source: DatasetSource = "path/to/kmnist".parse()?;
//! let test = Dataset::load(&source, Split::Test, &LoadOptions::default())?;
//! for batch in test.batches(1000, &device) {
//!     let _labels = batch?.labels;
//! }
//!
//! // So does your own data, of the kind the path is; hold out a seeded fifth as the test set.
//! let source: DatasetSource = "readings.csv".parse()?;
//! let test = cae_data::TestSplit::Fraction { fraction: 0.2, seed: 0 };
//! let split = cae_data::load_train_test(&source, &test, &LoadOptions::default())?;
//! let _record = split.held_out; // fraction, seed and the test indices
//! let _real_valued = !split.train.in_unit_interval();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where files are looked for, for a named dataset `<name>` (`mnist`, `fashion-mnist`): the data
//! root is [`LoadOptions::cache_dir`], else `$CAE_DATA_DIR`, else the per-user cache
//! directory plus `cae`; files are found in `<root>/<name>/` or directly in `<root>/`, and
//! downloads go to `<root>/<name>/`.

#![warn(missing_docs)]

mod batch;
mod csv;
mod dataset;
mod download;
mod error;
mod holdout;
pub mod idx;
mod images;
mod load;
mod memory;
mod npy;
mod npy_header;
mod paths;
mod shape;
mod source;
mod spec;
mod split;
mod stats;
mod storage;
mod weights;

pub use batch::{Batch, Batcher, Batches, DEFAULT_BATCH_SIZE};
pub use csv::{CsvHeader, CsvTable};
pub use dataset::Dataset;
pub use download::{download_files, DownloadOptions};
pub use error::{DataError, DownloadAttempt, FetchError};
pub use holdout::{load_train_test, HeldOut, TestSplit, TrainTest};
pub use images::ImageFolder;
pub use load::LoadOptions;
pub use npy::NpyFiles;
pub use npy_header::encode_npy_header;
pub use paths::{data_root, find_idx_file, resolve_data_root, DATA_DIR_ENV};
pub use shape::SampleShape;
pub use source::DatasetSource;
pub use spec::DatasetSpec;
pub use split::Split;
pub use stats::FeatureStats;
pub use storage::{ElementType, Storage};
pub use weights::{
    installed_weights_path, resolve_weights_dir, weights_dir, INSTALLED_WEIGHTS_FILE,
    WEIGHTS_DIR_ENV,
};
