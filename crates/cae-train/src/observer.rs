use crate::artifacts::EpochMetrics;

/// What a run is about to do; sent once before the first batch.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub first_epoch: usize,
    pub epochs: usize,
    pub batches_per_epoch: usize,
    pub train_samples: usize,
    pub test_samples: usize,
    pub parameters: usize,
    pub device: String,
}

/// One optimisation step's numbers.
#[derive(Debug, Clone, Copy)]
pub struct BatchReport {
    pub epoch: usize,
    /// 0-based index within the epoch.
    pub batch: usize,
    pub bce: f64,
    pub penalty: f64,
    pub total: f64,
}

/// Receives every event of a training run. All methods default to doing nothing.
pub trait TrainObserver {
    fn on_start(&mut self, _info: &RunInfo) {}
    fn on_epoch_start(&mut self, _epoch: usize) {}
    fn on_batch(&mut self, _report: &BatchReport) {}
    /// After training batches, before the test-set evaluation.
    fn on_evaluate(&mut self, _epoch: usize) {}
    fn on_epoch_end(&mut self, _metrics: &EpochMetrics, _is_best: bool) {}
}

/// An observer that ignores everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;
impl TrainObserver for Silent {}
