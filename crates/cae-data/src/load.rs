//! Loading a dataset: named ones from the data root (downloaded and verified on a cache miss),
//! a directory of IDX files, an image folder, a `.npy` array or a CSV table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::csv::{self, CsvTable};
use crate::dataset::Dataset;
use crate::download::{self, DownloadOptions};
use crate::error::DataError;
use crate::idx;
use crate::images::{self, ImageFolder};
use crate::memory::Budget;
use crate::npy::{self, NpyFiles};
use crate::paths::{self, find_idx_file};
use crate::source::{DatasetSource, Origin};
use crate::spec::DatasetSpec;
use crate::split::Split;

/// How to find and fetch a dataset, and how much memory it may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    /// The data root (holding `mnist/`, `fashion-mnist/`, …). `None`: `$CAE_DATA_DIR`, else
    /// the per-user cache directory (`~/.cache/cae` on Linux). Files placed directly in the
    /// root are found too, so `--data-dir path/to/mnist` works.
    pub cache_dir: Option<PathBuf>,
    /// Download missing files. When false, a missing file is an error saying where to put it.
    pub download: bool,
    /// Draw a progress bar while downloading (only ever on a terminal).
    pub progress: bool,
    /// Connect timeout, and the longest a server may stay silent mid-transfer.
    pub timeout: Duration,
    /// Extra tries per mirror after a timeout or transport error, before the next mirror.
    pub retries: u32,
    /// The most bytes an image folder, `.npy` array or CSV table may take in memory, checked
    /// before it is read (as far as its size is known beforehand). `None`: the memory the
    /// system says is available.
    pub memory_limit: Option<u64>,
}

impl LoadOptions {
    /// The part of these options the downloader needs.
    pub fn download_options(&self) -> DownloadOptions {
        DownloadOptions {
            timeout: self.timeout,
            retries: self.retries,
            progress: self.progress,
        }
    }
}

impl Default for LoadOptions {
    /// Downloading on, with the downloader's defaults ([`DownloadOptions::default`]).
    fn default() -> Self {
        let download = DownloadOptions::default();
        Self {
            cache_dir: None,
            download: true,
            progress: download.progress,
            timeout: download.timeout,
            retries: download.retries,
            memory_limit: None,
        }
    }
}

impl Dataset {
    /// Loads one split of a named dataset (downloading it on a cache miss, verifying the
    /// pinned checksums) or of a directory of IDX files. An image folder, array or table is one
    /// set of samples: its [`Split::Train`] is all of it, and its [`Split::Test`] is
    /// [`DataError::NoTestSplit`] (see [`crate::load_train_test`]).
    pub fn load(
        source: &DatasetSource,
        split: Split,
        opts: &LoadOptions,
    ) -> Result<Dataset, DataError> {
        let origin = source.origin();
        if split == Split::Test && !source.has_test_split() {
            return Err(DataError::NoTestSplit {
                source_name: source.to_string(),
            });
        }
        match origin {
            Origin::Named(spec) => Self::load_spec(&spec, split, opts),
            Origin::IdxDir(dir) => {
                let no_idx = [Split::Train, Split::Test]
                    .iter()
                    .all(|s| find_idx_file(dir, &s.images_file()).is_none());
                match DatasetSource::detect(dir) {
                    // Not IDX files after all: read it as what it is, or say what it is.
                    Ok(other) if no_idx && !matches!(other, DatasetSource::Dir(_)) => {
                        Self::load(&other, split, opts)
                    }
                    Err(unknown) if no_idx => Err(unknown),
                    _ => Self::load_dir(dir, split),
                }
            }
            Origin::Images(folder) => Self::load_images(folder, opts),
            Origin::Npy(files) => Self::load_npy(files, opts),
            Origin::Csv(table) => Self::load_csv(table, opts),
        }
    }

    /// Reads a folder of PNG/JPEG images (see [`ImageFolder`]) into bytes, channels last.
    pub fn load_images(folder: &ImageFolder, opts: &LoadOptions) -> Result<Dataset, DataError> {
        images::load(folder, Budget::new(opts.memory_limit))
    }

    /// Reads a `.npy` array (and its labels): bytes stay bytes, `float32` stays `f32`, and
    /// `float64` is narrowed to `f32`.
    pub fn load_npy(files: &NpyFiles, opts: &LoadOptions) -> Result<Dataset, DataError> {
        npy::load(
            &files.data,
            files.labels.as_deref(),
            Budget::new(opts.memory_limit),
        )
    }

    /// Reads a CSV table of numbers into `f32` features.
    pub fn load_csv(table: &CsvTable, opts: &LoadOptions) -> Result<Dataset, DataError> {
        csv::load(table, Budget::new(opts.memory_limit))
    }

    /// Loads one split of the dataset described by `spec`: from `<root>/<name>/` or `<root>/`,
    /// else downloaded from its mirrors into `<root>/<name>/` (when `opts.download`). Every
    /// file is checked against the spec's SHA-256 of its decompressed contents.
    pub fn load_spec(
        spec: &DatasetSpec,
        split: Split,
        opts: &LoadOptions,
    ) -> Result<Dataset, DataError> {
        let root =
            paths::data_root(opts.cache_dir.as_deref()).ok_or_else(|| DataError::NoCacheDir {
                dataset: spec.name.clone(),
            })?;
        let dir = root.join(&spec.name);
        let searched = [dir.clone(), root];
        let names = [split.images_file(), split.labels_file()];
        let mut paths: Vec<Option<PathBuf>> = names
            .iter()
            .map(|name| searched.iter().find_map(|d| find_idx_file(d, name)))
            .collect();

        let missing: Vec<&str> = names
            .iter()
            .zip(&paths)
            .filter(|(_, p)| p.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        if !missing.is_empty() {
            if !opts.download {
                return Err(DataError::Missing {
                    missing: missing.iter().map(|m| m.to_string()).collect(),
                    searched: searched.to_vec(),
                    hint: format!(
                        "Downloading is disabled: put {} (gzip-compressed or not) into {}, \
                         or set the data root (CAE_DATA_DIR) to a directory holding them.",
                        names
                            .iter()
                            .map(|n| format!("{n}.gz"))
                            .collect::<Vec<_>>()
                            .join(" and "),
                        dir.display()
                    ),
                });
            }
            let mut downloaded =
                download::download_files(spec, &missing, &dir, &opts.download_options())?
                    .into_iter();
            for path in paths.iter_mut().filter(|p| p.is_none()) {
                *path = downloaded.next();
            }
        }
        let [Some(images), Some(labels)] = [paths[0].take(), paths[1].take()] else {
            unreachable!("every missing file was downloaded or reported");
        };
        Self::load_files(
            &images,
            &labels,
            spec.sha256(&names[0]),
            spec.sha256(&names[1]),
        )
    }

    /// Loads one split from a directory of IDX files, spelled `train-images-idx3-ubyte` or
    /// `train-images.idx3-ubyte`, each with or without `.gz`. No checksums: any data will do.
    pub fn load_dir(dir: &Path, split: Split) -> Result<Dataset, DataError> {
        let names = [split.images_file(), split.labels_file()];
        let paths = names.clone().map(|n| find_idx_file(dir, &n));
        match paths {
            [Some(images), Some(labels)] => Self::load_files(&images, &labels, None, None),
            _ => {
                let missing = names
                    .iter()
                    .zip(&paths)
                    .filter(|(_, p)| p.is_none())
                    .map(|(n, _)| n.clone())
                    .collect();
                let hint = if dir.is_dir() {
                    "A dataset directory holds train-images-idx3-ubyte, train-labels-idx1-ubyte, \
                     t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz). \
                     \"mnist\" and \"fashion-mnist\" are downloaded by name."
                        .to_string()
                } else {
                    format!(
                        "{} is not a directory; the built-in datasets are named \"mnist\" \
                         and \"fashion-mnist\".",
                        dir.display()
                    )
                };
                Err(DataError::Missing {
                    missing,
                    searched: vec![dir.to_path_buf()],
                    hint,
                })
            }
        }
    }

    /// Loads an image file and a label file (each raw or gzip-compressed), checking their
    /// decompressed contents against the given SHA-256 sums when there are any.
    pub fn load_files(
        images_path: &Path,
        labels_path: &Path,
        images_sha256: Option<&str>,
        labels_sha256: Option<&str>,
    ) -> Result<Dataset, DataError> {
        let images = idx::read_idx_file(images_path, idx::Role::Images, images_sha256)?;
        let (n_images, rows, cols) = idx::check_images(&images, images_path)?;
        let labels = idx::read_idx_file(labels_path, idx::Role::Labels, labels_sha256)?;
        let n_labels = idx::check_labels(&labels, labels_path)?;
        if n_images != n_labels {
            return Err(DataError::CountMismatch {
                images: images_path.to_path_buf(),
                labels: labels_path.to_path_buf(),
                n_images,
                n_labels,
            });
        }
        Dataset::from_raw(images.data, labels.data, rows, cols)
    }
}
