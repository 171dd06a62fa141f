use std::path::PathBuf;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    #[error(transparent)]
    Model(#[from] cae_core::CaeError),
    #[error(transparent)]
    Data(#[from] cae_data::DataError),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Artifact(#[from] crate::artifacts::ArtifactError),
    #[error(transparent)]
    Figure(#[from] crate::figures::FigureError),
    #[error("the loss became {value} at epoch {epoch}, batch {batch}; training stopped. The last good checkpoint is kept in {run_dir}")]
    NonFinite {
        epoch: usize,
        batch: usize,
        value: f64,
        run_dir: PathBuf,
    },
    #[error("the training BCE reached {bce} per pixel at epoch {epoch}, batch {batch}, past the divergence bound {bound} (predicting 0.5 everywhere scores 0.69); training stopped. The last good checkpoint is kept in {run_dir}")]
    Diverged {
        epoch: usize,
        batch: usize,
        bce: f64,
        bound: f64,
        run_dir: PathBuf,
    },
    #[error("the weights became NaN or infinite in epoch {epoch} (tensor `{tensor}`); training stopped. The last good checkpoint is kept in {run_dir}")]
    NonFiniteWeights {
        epoch: usize,
        tensor: String,
        run_dir: PathBuf,
    },
    #[error("interrupted during epoch {epoch} after {batches_done} batches; the state is saved in {run_dir}")]
    Interrupted {
        epoch: usize,
        batches_done: usize,
        run_dir: PathBuf,
    },
    #[error("{path}: the directory already has files")]
    NotEmpty { path: PathBuf },
    #[error("{path} is not a run directory: {reason}")]
    NotARun { path: PathBuf, reason: String },
    #[error("{path}: another process is writing this run directory (it holds the lock)")]
    Locked { path: PathBuf },
    #[error("{path}: {message}")]
    RunDir { path: PathBuf, message: String },
}
