//! [`TrainError`]: everything that can stop a training run or an analysis, stated as facts (no
//! command-line flags; `cae-cli` adds the hints).
use std::path::PathBuf;

/// Everything that can stop a training run.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A setting that cannot train (or an analysis that cannot measure), and why.
    #[error("invalid training configuration: {0}")]
    InvalidConfig(String),
    /// The model failed.
    #[error(transparent)]
    Model(#[from] cae_core::CaeError),
    /// Reading the dataset failed.
    #[error(transparent)]
    Data(#[from] cae_data::DataError),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    /// Reading or writing a run's files failed.
    #[error(transparent)]
    Artifact(#[from] crate::artifacts::ArtifactError),
    /// Drawing or writing a figure failed.
    #[error(transparent)]
    Figure(#[from] crate::figures::FigureError),
    #[error("the loss became {value} at epoch {epoch}, batch {batch}; training stopped. The last good checkpoint is kept in {run_dir}")]
    /// The loss became NaN or infinite.
    NonFinite {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch of the epoch.
        batch: usize,
        /// The loss.
        value: f64,
        /// The run directory, which keeps the last good checkpoint.
        run_dir: PathBuf,
    },
    #[error("the training {loss} reached {value} per value at epoch {epoch}, batch {batch}, past the divergence bound {bound} (a BCE model predicting 0.5 everywhere scores 0.69, an MSE model predicting the mean of standardised data 1); training stopped. The last good checkpoint is kept in {run_dir}")]
    /// The training reconstruction loss passed [`crate::DIVERGED_LOSS`].
    Diverged {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based batch of the epoch.
        batch: usize,
        /// The loss's name (`BCE` or `MSE`).
        loss: String,
        /// The batch's reconstruction loss per value.
        value: f64,
        /// The bound it passed.
        bound: f64,
        /// The run directory, which keeps the last good checkpoint.
        run_dir: PathBuf,
    },
    #[error("the weights became NaN or infinite in epoch {epoch} (tensor `{tensor}`); training stopped. The last good checkpoint is kept in {run_dir}")]
    /// A weight became NaN or infinite.
    NonFiniteWeights {
        /// 1-based epoch.
        epoch: usize,
        /// The tensor's name.
        tensor: String,
        /// The run directory, which keeps the last good checkpoint.
        run_dir: PathBuf,
    },
    #[error("interrupted during epoch {epoch} after {batches_done} batches; the state is saved in {run_dir}")]
    /// Stopped on request (Ctrl-C); the state is saved.
    Interrupted {
        /// 1-based epoch.
        epoch: usize,
        /// Batches of that epoch trained.
        batches_done: usize,
        /// The run directory.
        run_dir: PathBuf,
    },
    #[error("{path}: the directory already has files")]
    /// A new run's directory already has files.
    NotEmpty {
        /// The directory.
        path: PathBuf,
    },
    #[error("{path} is not a run directory: {reason}")]
    /// The directory to resume is not a run.
    NotARun {
        /// The directory.
        path: PathBuf,
        /// What is missing or wrong.
        reason: String,
    },
    #[error("{path}: another process is writing this run directory (it holds the lock)")]
    /// Another process holds the run directory's lock.
    Locked {
        /// The directory.
        path: PathBuf,
    },
    #[error("{path}: {message}")]
    /// The run directory could not be used.
    RunDir {
        /// The directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}
