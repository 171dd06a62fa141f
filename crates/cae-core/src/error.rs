//! The errors of cae-core, as data: each names what is wrong (and the file, where there is one).
use std::path::PathBuf;

/// Everything that can go wrong in `cae-core`.
#[derive(Debug, thiserror::Error)]
pub enum CaeError {
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A configuration (or a request against one) that cannot describe a model.
    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),

    /// A file could not be read.
    #[error("{path}: cannot read the file: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        // In the message rather than `source()`, so that error chains print it once.
        error: std::io::Error,
    },

    /// A file could not be written.
    #[error("{path}: cannot write the file: {error}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        // In the message rather than `source()`, so that error chains print it once.
        error: std::io::Error,
    },

    /// A model file of a format version this build does not read.
    #[error("{path}: model file format version `{found}` is not one this build reads (it reads version {supported}); it was written by a newer cae")]
    UnsupportedFormat {
        /// The model file.
        path: PathBuf,
        /// The version the file has.
        found: String,
        /// The version this build reads.
        supported: &'static str,
    },

    /// A tensor with a NaN or infinite value.
    #[error("{path}: tensor `{name}` holds a NaN or infinite value (element {index}); the model is unusable, probably saved from a diverged run")]
    NonFiniteTensor {
        /// The model file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The first non-finite element, in row-major order.
        index: usize,
    },

    /// A file that is not safetensors.
    #[error("{path}: not a safetensors file ({reason})")]
    NotSafetensors {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },

    /// A safetensors file without a cae configuration.
    #[error("{path}: no cae model configuration in the file's metadata (key `{key}`); was it saved by cae?")]
    MissingConfig {
        /// The file.
        path: PathBuf,
        /// The metadata key looked for.
        key: &'static str,
    },

    /// A configuration in a file's metadata that does not parse or is not valid.
    #[error("{path}: the model configuration in the metadata is not valid: {reason}")]
    BadConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A tensor the configuration needs is not in the file.
    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor {
        /// The file.
        path: PathBuf,
        /// The tensor the configuration needs.
        name: String,
    },

    /// A tensor whose shape is not the configuration's.
    #[error("{path}: tensor `{name}` has shape {found:?}, the configuration needs {expected:?}")]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape the configuration needs.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor of a dtype other than F32 or F64.
    #[error("{path}: tensor `{name}` has dtype {found}, expected F32 or F64")]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// Its dtype.
        found: String,
    },

    /// A device that this build or machine does not have.
    #[error("device `{requested}` is not available: {hint}")]
    DeviceUnavailable {
        /// The device asked for.
        requested: String,
        /// Why it is not available, and what is.
        hint: String,
    },
}

/// A result with a [`CaeError`].
pub type Result<T> = std::result::Result<T, CaeError>;
