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
    #[error("the loss became {value} at epoch {epoch}, batch {batch}; training stopped. The last good checkpoint is kept in {run_dir}. Try a lower --lr or --lambda.")]
    NonFinite {
        epoch: usize,
        batch: usize,
        value: f64,
        run_dir: PathBuf,
    },
    #[error("interrupted during epoch {epoch} after {batches_done} batches; the state was saved. Resume with: cae-cli train --resume {run_dir}")]
    Interrupted {
        epoch: usize,
        batches_done: usize,
        run_dir: PathBuf,
    },
    #[error("{path}: {message}")]
    RunDir { path: PathBuf, message: String },
}
