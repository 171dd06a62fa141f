//! Where a dataset comes from: a built-in name or a path, and the one place that maps a named
//! dataset to its download spec.

use std::convert::Infallible;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::spec::DatasetSpec;

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

/// How a source is read: a named dataset through its download spec, or files at a path.
#[derive(Debug)]
pub(crate) enum Origin<'a> {
    /// Found in the data root, else downloaded, and verified against the spec's sums.
    Named(DatasetSpec),
    /// `train-*` / `t10k-*` IDX files in a directory.
    IdxDir(&'a Path),
}

impl DatasetSource {
    /// The one place that maps a source to how it is read (and a name to its spec).
    pub(crate) fn origin(&self) -> Origin<'_> {
        match self {
            DatasetSource::Mnist => Origin::Named(DatasetSpec::mnist()),
            DatasetSource::FashionMnist => Origin::Named(DatasetSpec::fashion_mnist()),
            DatasetSource::Dir(dir) => Origin::IdxDir(dir),
        }
    }

    /// The download spec of a named dataset; `None` for a path.
    pub fn spec(&self) -> Option<DatasetSpec> {
        match self.origin() {
            Origin::Named(spec) => Some(spec),
            Origin::IdxDir(_) => None,
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
