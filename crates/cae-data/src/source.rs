//! Where a dataset comes from: a built-in name or a path (a directory of IDX files or of images,
//! a `.npy` or `.csv` file), chosen by what the path is; and the one place that maps a source to
//! how it is read (a named dataset to its download spec).

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::csv::CsvTable;
use crate::error::DataError;
use crate::images::{self, ImageFolder};
use crate::npy::NpyFiles;
use crate::paths::find_idx_file;
use crate::spec::DatasetSpec;
use crate::split::Split;

/// Where a dataset comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DatasetSource {
    /// MNIST digits, downloaded into the data root on first use.
    Mnist,
    /// Fashion-MNIST, downloaded into the data root on first use.
    FashionMnist,
    /// A directory holding `train-*` / `t10k-*` IDX files (never downloaded, not checksummed).
    Dir(PathBuf),
    /// A folder of PNG/JPEG images, optionally one subdirectory per class.
    Images(ImageFolder),
    /// A NumPy `.npy` array, with an optional `.npy` of labels.
    Npy(NpyFiles),
    /// A CSV table of numbers.
    Csv(CsvTable),
}

/// How a source is read: a named dataset through its download spec, or files at a path.
#[derive(Debug)]
pub(crate) enum Origin<'a> {
    /// Found in the data root, else downloaded, and verified against the spec's sums.
    Named(DatasetSpec),
    /// `train-*` / `t10k-*` IDX files in a directory.
    IdxDir(&'a Path),
    /// A folder of images.
    Images(&'a ImageFolder),
    /// A `.npy` array.
    Npy(&'a NpyFiles),
    /// A CSV table.
    Csv(&'a CsvTable),
}

impl DatasetSource {
    /// The one place that maps a source to how it is read (and a name to its spec).
    pub(crate) fn origin(&self) -> Origin<'_> {
        match self {
            DatasetSource::Mnist => Origin::Named(DatasetSpec::mnist()),
            DatasetSource::FashionMnist => Origin::Named(DatasetSpec::fashion_mnist()),
            DatasetSource::Dir(dir) => Origin::IdxDir(dir),
            DatasetSource::Images(folder) => Origin::Images(folder),
            DatasetSource::Npy(files) => Origin::Npy(files),
            DatasetSource::Csv(table) => Origin::Csv(table),
        }
    }

    /// The download spec of a named dataset; `None` for a path.
    pub fn spec(&self) -> Option<DatasetSpec> {
        match self.origin() {
            Origin::Named(spec) => Some(spec),
            _ => None,
        }
    }

    /// The path the data is read from; `None` for a named dataset.
    pub fn path(&self) -> Option<&Path> {
        match self.origin() {
            Origin::Named(_) => None,
            Origin::IdxDir(dir) => Some(dir),
            Origin::Images(folder) => Some(&folder.dir),
            Origin::Npy(files) => Some(&files.data),
            Origin::Csv(table) => Some(&table.path),
        }
    }

    /// Whether the source has a test split of its own (`t10k-*` files): named datasets and IDX
    /// directories do; a folder, array or table is one set of samples.
    pub fn has_test_split(&self) -> bool {
        matches!(self.origin(), Origin::Named(_) | Origin::IdxDir(_))
    }

    /// The kind of dataset at `path`, by what it is: a `.npy` or `.csv` file; a directory with
    /// `train-*`/`t10k-*` IDX files; a directory with PNG/JPEG images (directly, or in
    /// subdirectories). Anything else is [`DataError::UnknownSource`], saying what it is.
    pub fn detect(path: &Path) -> Result<DatasetSource, DataError> {
        let unknown = |reason: &str| DataError::UnknownSource {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        };
        let meta = std::fs::metadata(path).map_err(|e| unknown(&e.to_string()))?;
        if meta.is_file() {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            return match ext.as_deref() {
                Some("npy") => Ok(DatasetSource::Npy(NpyFiles::new(path))),
                Some("csv") => Ok(DatasetSource::Csv(CsvTable::new(path))),
                _ => Err(unknown("a file that is neither .npy nor .csv")),
            };
        }
        let has_idx = [Split::Train, Split::Test]
            .iter()
            .any(|s| find_idx_file(path, &s.images_file()).is_some());
        if has_idx {
            Ok(DatasetSource::Dir(path.to_path_buf()))
        } else if images::holds_images(path) {
            Ok(DatasetSource::Images(ImageFolder::new(path)))
        } else {
            Err(unknown(
                "a directory with neither IDX files (train-images-idx3-ubyte, …) nor PNG/JPEG \
                 images",
            ))
        }
    }
}

impl FromStr for DatasetSource {
    type Err = Infallible;

    /// `"mnist"` and `"fashion-mnist"` (any case, `_` for `-` allowed) name the built-in
    /// datasets; anything else is a path, of the kind [`DatasetSource::detect`] finds. A path
    /// that fits no kind parses as [`DatasetSource::Dir`], whose loading reports what it is.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "mnist" => DatasetSource::Mnist,
            "fashion-mnist" | "fashionmnist" => DatasetSource::FashionMnist,
            _ => DatasetSource::detect(Path::new(s))
                .unwrap_or_else(|_| DatasetSource::Dir(PathBuf::from(s))),
        })
    }
}

impl fmt::Display for DatasetSource {
    /// The name, or the path.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatasetSource::Mnist => f.write_str("mnist"),
            DatasetSource::FashionMnist => f.write_str("fashion-mnist"),
            DatasetSource::Dir(dir) => write!(f, "{}", dir.display()),
            DatasetSource::Images(folder) => write!(f, "{}", folder.dir.display()),
            DatasetSource::Npy(files) => write!(f, "{}", files.data.display()),
            DatasetSource::Csv(table) => write!(f, "{}", table.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Split;

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
}
