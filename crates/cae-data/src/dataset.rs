//! A labelled image dataset in memory, and how to find it: by name (downloaded and cached) or
//! by directory.

use std::convert::Infallible;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use candle_core::{Device, Tensor};

use crate::download::{self, DatasetSpec};
use crate::error::DataError;
use crate::idx;

/// Which half of a dataset: `train-*` or `t10k-*` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    Train,
    Test,
}

impl Split {
    /// The file-name prefix of the split, as MNIST spells it.
    pub fn prefix(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }

    /// The image file's name, without `.gz`: `train-images-idx3-ubyte`.
    pub fn images_file(self) -> String {
        format!("{}-images-idx3-ubyte", self.prefix())
    }

    /// The label file's name, without `.gz`: `train-labels-idx1-ubyte`.
    pub fn labels_file(self) -> String {
        format!("{}-labels-idx1-ubyte", self.prefix())
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Split::Train => "train",
            Split::Test => "test",
        })
    }
}

impl FromStr for Split {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "train" => Ok(Split::Train),
            "test" | "t10k" => Ok(Split::Test),
            _ => Err(format!(
                "unknown split {s:?}: expected \"train\" or \"test\""
            )),
        }
    }
}

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DatasetSource {
    /// MNIST digits, downloaded into the data root on first use.
    Mnist,
    /// Fashion-MNIST, downloaded into the data root on first use.
    FashionMnist,
    /// A directory holding `train-*` / `t10k-*` IDX files (never downloaded, not checksummed).
    Dir(PathBuf),
}

impl DatasetSource {
    /// The download spec of a named dataset; `None` for a directory.
    pub fn spec(&self) -> Option<DatasetSpec> {
        match self {
            DatasetSource::Mnist => Some(DatasetSpec::mnist()),
            DatasetSource::FashionMnist => Some(DatasetSpec::fashion_mnist()),
            DatasetSource::Dir(_) => None,
        }
    }
}

impl FromStr for DatasetSource {
    type Err = Infallible;

    /// `"mnist"` and `"fashion-mnist"` (any case, `_` for `-` allowed) name the built-in
    /// datasets; anything else is taken as a directory path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "mnist" => DatasetSource::Mnist,
            "fashion-mnist" | "fashionmnist" => DatasetSource::FashionMnist,
            _ => DatasetSource::Dir(PathBuf::from(s)),
        })
    }
}

impl fmt::Display for DatasetSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSource::Mnist => f.write_str("mnist"),
            DatasetSource::FashionMnist => f.write_str("fashion-mnist"),
            DatasetSource::Dir(dir) => write!(f, "{}", dir.display()),
        }
    }
}

/// How to find and fetch a named dataset.
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
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            cache_dir: None,
            download: true,
            progress: true,
            timeout: Duration::from_secs(30),
            retries: 2,
        }
    }
}

/// Labelled greyscale images, kept as bytes (60000 MNIST images are 47 MB as `u8`, four times
/// that as `f32`); minibatches are converted to `f32` on the device when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Dataset {
    /// Loads one split of a named dataset (downloading it on a cache miss, verifying the
    /// pinned checksums) or of a directory of IDX files.
    pub fn load(
        source: &DatasetSource,
        split: Split,
        opts: &LoadOptions,
    ) -> Result<Dataset, DataError> {
        match source {
            DatasetSource::Mnist => Self::load_spec(&DatasetSpec::mnist(), split, opts),
            DatasetSource::FashionMnist => {
                Self::load_spec(&DatasetSpec::fashion_mnist(), split, opts)
            }
            DatasetSource::Dir(dir) => Self::load_dir(dir, split),
        }
    }

    /// Loads one split of the dataset described by `spec`: from `<root>/<name>/` or `<root>/`,
    /// else downloaded from its mirrors into `<root>/<name>/` (when `opts.download`). Every
    /// file is checked against the spec's SHA-256 of its decompressed contents.
    pub fn load_spec(
        spec: &DatasetSpec,
        split: Split,
        opts: &LoadOptions,
    ) -> Result<Dataset, DataError> {
        let root = download::data_root(opts.cache_dir.as_deref()).ok_or_else(|| {
            DataError::NoCacheDir {
                dataset: spec.name.clone(),
            }
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
            let mut downloaded = download::download_files(spec, &missing, &dir, opts)?.into_iter();
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
        Ok(Dataset {
            images: images.data,
            labels: labels.data,
            rows,
            cols,
        })
    }

    /// Builds a dataset from `labels.len()` images of `rows × cols` bytes each, row-major.
    pub fn from_raw(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
    ) -> Result<Dataset, DataError> {
        if rows == 0 || cols == 0 {
            return Err(DataError::InvalidRaw {
                what: "rows × cols (both must be positive)",
                expected: 1,
                found: 0,
            });
        }
        let expected = labels.len().checked_mul(rows * cols);
        if expected != Some(images.len()) {
            return Err(DataError::InvalidRaw {
                what: "image bytes (labels × rows × cols)",
                expected: expected.unwrap_or(usize::MAX),
                found: images.len(),
            });
        }
        Ok(Dataset {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image: `rows * cols` (784 for MNIST).
    pub fn image_dim(&self) -> usize {
        self.rows * self.cols
    }

    /// All images, `len() × image_dim()` bytes, row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of sample `i`. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let dim = self.image_dim();
        &self.images[i * dim..(i + 1) * dim]
    }

    /// `1 + the largest label` (10 for MNIST); 0 when empty.
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }

    /// The first `n` samples (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.image_dim()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Samples `range` as an `f32` tensor of shape `[range.len(), image_dim()]`, values in
    /// `[0, 1]`, on `device`. An out-of-bounds range is an error.
    pub fn to_tensor(&self, range: Range<usize>, device: &Device) -> candle_core::Result<Tensor> {
        if range.start > range.end || range.end > self.len() {
            candle_core::bail!(
                "sample range {range:?} out of bounds for a dataset of {} samples",
                self.len()
            );
        }
        let dim = self.image_dim();
        let pixels = &self.images[range.start * dim..range.end * dim];
        Tensor::from_vec(to_unit_f32(pixels), (range.len(), dim), device)
    }

    /// Samples `indices`, in that order, as an `f32` tensor `[indices.len(), image_dim()]` in
    /// `[0, 1]`. An out-of-bounds index is an error.
    pub fn gather_tensor(&self, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let dim = self.image_dim();
        let mut out = Vec::with_capacity(indices.len() * dim);
        for &i in indices {
            if i >= self.len() {
                candle_core::bail!(
                    "sample index {i} out of bounds for a dataset of {} samples",
                    self.len()
                );
            }
            out.extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
        }
        Tensor::from_vec(out, (indices.len(), dim), device)
    }
}

fn to_unit_f32(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

/// Finds `name` (e.g. `train-images-idx3-ubyte`) in `dir` under any of the spellings in use:
/// with or without `.gz`, and with `.idx` for `-idx` (`train-images.idx3-ubyte`, as some
/// unpacked archives have it).
pub fn find_idx_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let dotted = name.replacen("-idx", ".idx", 1);
    [
        format!("{name}.gz"),
        name.to_string(),
        format!("{dotted}.gz"),
        dotted,
    ]
    .into_iter()
    .map(|candidate| dir.join(candidate))
    .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // Three 2×2 images whose pixels encode their index.
        let images = vec![0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 255];
        Dataset::from_raw(images, vec![7, 8, 9], 2, 2).unwrap()
    }

    #[test]
    fn parse_source_and_split() {
        assert_eq!("mnist".parse::<DatasetSource>(), Ok(DatasetSource::Mnist));
        assert_eq!("MNIST".parse::<DatasetSource>(), Ok(DatasetSource::Mnist));
        assert_eq!(
            "fashion-mnist".parse::<DatasetSource>(),
            Ok(DatasetSource::FashionMnist)
        );
        assert_eq!(
            "fashion_mnist".parse::<DatasetSource>(),
            Ok(DatasetSource::FashionMnist)
        );
        assert_eq!(
            "./data/kmnist".parse::<DatasetSource>(),
            Ok(DatasetSource::Dir(PathBuf::from("./data/kmnist")))
        );
        assert_eq!("train".parse::<Split>(), Ok(Split::Train));
        assert_eq!("test".parse::<Split>(), Ok(Split::Test));
        assert!("val".parse::<Split>().is_err());
        assert_eq!(Split::Test.images_file(), "t10k-images-idx3-ubyte");
        assert_eq!(Split::Train.labels_file(), "train-labels-idx1-ubyte");
    }

    #[test]
    fn from_raw_validates() {
        assert!(matches!(
            Dataset::from_raw(vec![0; 7], vec![0, 1], 2, 2),
            Err(DataError::InvalidRaw {
                expected: 8,
                found: 7,
                ..
            })
        ));
        assert!(Dataset::from_raw(vec![], vec![], 0, 2).is_err());
        let empty = Dataset::from_raw(vec![], vec![], 28, 28).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.num_classes(), 0);
    }

    #[test]
    fn accessors_and_take() {
        let d = tiny();
        assert_eq!((d.len(), d.rows(), d.cols(), d.image_dim()), (3, 2, 2, 4));
        assert_eq!(d.image(1), &[10, 11, 12, 13]);
        assert_eq!(d.num_classes(), 10);
        let t = d.take(2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.labels(), &[7, 8]);
        assert_eq!(t.images(), &d.images()[..8]);
        assert_eq!(d.take(100), d);
    }

    #[test]
    fn to_tensor_scales_to_unit_interval() {
        let d = tiny();
        let t = d.to_tensor(1..3, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[2, 4]);
        assert_eq!(t.dtype(), candle_core::DType::F32);
        let v = t.to_vec2::<f32>().unwrap();
        assert_eq!(v[0][0], 10.0 / 255.0);
        assert_eq!(v[1][3], 1.0);
        assert!(d.to_tensor(2..4, &Device::Cpu).is_err());
        assert_eq!(d.to_tensor(3..3, &Device::Cpu).unwrap().dims(), &[0, 4]);

        let g = d.gather_tensor(&[2, 0], &Device::Cpu).unwrap();
        assert_eq!(g.to_vec2::<f32>().unwrap()[1][1], 1.0 / 255.0);
        assert!(d.gather_tensor(&[3], &Device::Cpu).is_err());
    }
}
