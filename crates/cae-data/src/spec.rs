//! The named datasets this crate can download: their files, pinned sums and mirrors.

/// A named dataset that can be downloaded: its files, their pinned sums and its mirrors.
///
/// The constructors [`DatasetSpec::mnist`] and [`DatasetSpec::fashion_mnist`] give the real
/// thing; tests build their own to point at a local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Short name, also the name of the dataset's subdirectory in the data root.
    pub name: String,
    /// `(file name without .gz, SHA-256 of the decompressed IDX file)`.
    pub files: Vec<(String, String)>,
    /// Base URLs tried in order; `<mirror><file name>.gz` is fetched.
    pub mirrors: Vec<String>,
}

// Sums of the decompressed files, from /work/shared/data/*/SHA256SUMS.idx (the same contents
// torchvision and the Fashion-MNIST repository pin, in compressed form).
const MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

const FASHION_MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "train-labels-idx1-ubyte",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "t10k-images-idx3-ubyte",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

impl DatasetSpec {
    /// LeCun et al.'s handwritten digits.
    pub fn mnist() -> Self {
        Self::from_static(
            "mnist",
            &MNIST_FILES,
            &[
                // torchvision's first choice; yann.lecun.com often refuses or rate-limits.
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ],
        )
    }

    /// Zalando's Fashion-MNIST: same format and sizes as MNIST, ten kinds of clothing.
    pub fn fashion_mnist() -> Self {
        Self::from_static(
            "fashion-mnist",
            &FASHION_MNIST_FILES,
            &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        )
    }

    fn from_static(name: &str, files: &[(&str, &str)], mirrors: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            files: files
                .iter()
                .map(|&(f, s)| (f.to_string(), s.to_string()))
                .collect(),
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// The pinned SHA-256 of the decompressed `file` (name without `.gz`), if the spec has one.
    pub fn sha256(&self, file: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, s)| s.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_complete() {
        for spec in [DatasetSpec::mnist(), DatasetSpec::fashion_mnist()] {
            assert_eq!(spec.files.len(), 4);
            assert!(!spec.mirrors.is_empty());
            for (_, sum) in &spec.files {
                assert_eq!(sum.len(), 64);
                assert!(sum.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
        assert_eq!(
            DatasetSpec::mnist().mirrors[0],
            "https://ossci-datasets.s3.amazonaws.com/mnist/"
        );
        assert!(DatasetSpec::mnist()
            .sha256("train-images-idx3-ubyte")
            .is_some());
        assert!(DatasetSpec::mnist().sha256("nope").is_none());
    }
}
