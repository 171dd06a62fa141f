use std::path::PathBuf;

/// Everything that can go wrong in `cae-core`.
#[derive(Debug, thiserror::Error)]
pub enum CaeError {
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    #[error("invalid model configuration: {0}")]
    InvalidConfig(String),

    #[error("{path}: cannot read the file: {error}")]
    Io {
        path: PathBuf,
        // In the message rather than `source()`, so that error chains print it once.
        error: std::io::Error,
    },

    #[error("{path}: cannot write the file: {error}")]
    Write {
        path: PathBuf,
        // In the message rather than `source()`, so that error chains print it once.
        error: std::io::Error,
    },

    #[error("{path}: model file format version `{found}` is not one this build reads (it reads version {supported}); it was written by a newer cae")]
    UnsupportedFormat {
        path: PathBuf,
        found: String,
        supported: &'static str,
    },

    #[error("{path}: tensor `{name}` holds a NaN or infinite value (element {index}); the model is unusable, probably saved from a diverged run")]
    NonFiniteTensor {
        path: PathBuf,
        name: String,
        index: usize,
    },

    #[error("{path}: not a safetensors file ({reason})")]
    NotSafetensors { path: PathBuf, reason: String },

    #[error("{path}: no cae model configuration in the file's metadata (key `{key}`); was it saved by cae?")]
    MissingConfig { path: PathBuf, key: &'static str },

    #[error("{path}: the model configuration in the metadata is not valid: {reason}")]
    BadConfig { path: PathBuf, reason: String },

    #[error("{path}: tensor `{name}` is missing")]
    MissingTensor { path: PathBuf, name: String },

    #[error("{path}: tensor `{name}` has shape {found:?}, the configuration needs {expected:?}")]
    WrongShape {
        path: PathBuf,
        name: String,
        expected: Vec<usize>,
        found: Vec<usize>,
    },

    #[error("{path}: tensor `{name}` has dtype {found}, expected F32 or F64")]
    WrongDtype {
        path: PathBuf,
        name: String,
        found: String,
    },

    #[error("device `{requested}` is not available: {hint}")]
    DeviceUnavailable { requested: String, hint: String },
}

pub type Result<T> = std::result::Result<T, CaeError>;
