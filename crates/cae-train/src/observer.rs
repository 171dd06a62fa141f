//! What a training run tells its caller as it goes: [`TrainObserver`]'s hooks (start, batches,
//! epochs), with [`Silent`] for callers that want none.
use crate::artifacts::EpochMetrics;

/// What a run is about to do; sent once before the first batch.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// The first epoch this call trains (1 for a fresh run).
    pub first_epoch: usize,
    /// The last epoch it trains.
    pub epochs: usize,
    /// Batches per epoch.
    pub batches_per_epoch: usize,
    /// Training samples.
    pub train_samples: usize,
    /// Test samples.
    pub test_samples: usize,
    /// Trainable parameters of the model.
    pub parameters: usize,
    /// The device, as candle names it.
    pub device: String,
}

/// One optimisation step's numbers.
#[derive(Debug, Clone, Copy)]
pub struct BatchReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// 0-based index within the epoch.
    pub batch: usize,
    /// Reconstruction loss (BCE or MSE) per value of the batch.
    pub reconstruction: f64,
    /// Jacobian penalty (unweighted) of the batch.
    pub penalty: f64,
    /// The batch's objective (reconstruction + λ·penalty).
    pub total: f64,
}

/// Receives every event of a training run. All methods default to doing nothing.
pub trait TrainObserver {
    /// Called once before the first epoch.
    fn on_start(&mut self, _info: &RunInfo) {}
    /// Called as an epoch starts.
    fn on_epoch_start(&mut self, _epoch: usize) {}
    /// Called after every training batch.
    fn on_batch(&mut self, _report: &BatchReport) {}
    /// After training batches, before the test-set evaluation.
    fn on_evaluate(&mut self, _epoch: usize) {}
    /// Called after each epoch's checkpoint is saved; `is_best` when its test BCE is the lowest so far.
    fn on_epoch_end(&mut self, _metrics: &EpochMetrics, _is_best: bool) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;
impl TrainObserver for Silent {}
