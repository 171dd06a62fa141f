//! What a training run shows while it goes, shared by `train` and `train --stack-on`: progress
//! bars on a terminal, log lines elsewhere, and the Ctrl-C handling that saves before stopping.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use cae_train::artifacts::EpochMetrics;
use cae_train::{BatchReport, RunInfo, TrainObserver};
use indicatif::{ProgressBar, ProgressStyle};

/// Progress bars on a terminal, plain log lines otherwise (CI, pipes).
pub(crate) struct Progress {
    bars: bool,
    bar: Option<ProgressBar>,
    batches_per_epoch: usize,
    epochs: usize,
    /// The reconstruction loss's short name (`bce`, `mse`).
    loss: &'static str,
}

impl Progress {
    /// Bars when `bars`, log lines otherwise, for a model trained with `loss`.
    pub(crate) fn new(bars: bool, loss: cae_core::ReconstructionLoss) -> Self {
        Self {
            bars,
            bar: None,
            batches_per_epoch: 0,
            epochs: 0,
            loss: loss.key(),
        }
    }
}

impl TrainObserver for Progress {
    fn on_start(&mut self, info: &RunInfo) {
        self.batches_per_epoch = info.batches_per_epoch;
        self.epochs = info.epochs;
        tracing::info!(
            "{} parameters on {}; {} training / {} test images; {} batches per epoch; epochs {}..={}",
            info.parameters,
            info.device,
            info.train_samples,
            info.test_samples,
            info.batches_per_epoch,
            info.first_epoch,
            info.epochs
        );
    }

    fn on_epoch_start(&mut self, epoch: usize) {
        if self.bars {
            let bar = ProgressBar::new(self.batches_per_epoch as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "epoch {prefix} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}",
                )
                // invariant: a fixed template in indicatif's syntax; nothing in it comes from input.
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(format!("{epoch}/{}", self.epochs));
            self.bar = Some(bar);
        }
    }

    fn on_batch(&mut self, r: &BatchReport) {
        if let Some(bar) = &self.bar {
            bar.set_position(r.batch as u64 + 1);
            bar.set_message(format!(
                "{} {:.4} pen {:.4}",
                self.loss, r.reconstruction, r.penalty
            ));
        } else {
            tracing::debug!(
                epoch = r.epoch,
                batch = r.batch,
                loss = self.loss,
                reconstruction = r.reconstruction,
                penalty = r.penalty,
                "batch"
            );
        }
    }

    fn on_evaluate(&mut self, _epoch: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message("evaluating on the test set");
        }
    }

    fn on_epoch_end(&mut self, m: &EpochMetrics, is_best: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        tracing::info!(
            "epoch {:>3}  train {loss} {:.5} pen {:.5} total {:.5} | test {loss} {:.5} pen {:.5} ‖J‖_F {:.3} | {:.1} s, {:.0} samples/s{}",
            m.epoch,
            m.train_reconstruction,
            m.train_penalty,
            m.train_total,
            m.test_reconstruction,
            m.test_penalty,
            m.mean_jacobian_frobenius,
            m.seconds,
            m.samples_per_second,
            if is_best { "  (best)" } else { "" },
            loss = self.loss,
        );
    }
}

/// A flag set by the first Ctrl-C (the run saves and stops); a second one exits at once.
pub(crate) fn stop_on_ctrl_c() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nsecond interrupt: exiting without saving the current batch");
                std::process::exit(130);
            }
            eprintln!(
                "\ninterrupt: finishing this batch and saving (press Ctrl-C again to quit now)"
            );
        })
        .context("cannot install the Ctrl-C handler")?;
    }
    Ok(stop)
}
