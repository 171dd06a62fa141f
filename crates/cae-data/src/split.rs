//! Which half of a dataset is meant: the training or the test split.

use std::fmt;
use std::str::FromStr;

/// Which half of a dataset: `train-*` or `t10k-*` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Split {
    /// The training split (`train-*` files).
    Train,
    /// The test split (`t10k-*` files).
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
