//! Files in a run directory: per-epoch metrics and JSON documents.
//!
//! Every file is written atomically (temp file in the same directory, fsync,
//! rename) so that a crash or Ctrl-C mid-write never leaves a truncated
//! `metrics.jsonl` behind for `--resume` to choke on.

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use cae_core::ReconstructionLoss;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

/// File name of the JSON-lines metrics log inside a run directory.
pub const METRICS_JSONL: &str = "metrics.jsonl";
/// File name of the CSV copy of the metrics log (for spreadsheets and pandas).
pub const METRICS_CSV: &str = "metrics.csv";

/// Errors from reading or writing run-directory files; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// Writing a file failed.
    #[error("failed to write {path}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading a file failed.
    #[error("failed to read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A value could not be turned into JSON.
    #[error("failed to serialize JSON for {path}")]
    Serialize {
        /// The file it was meant for.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A JSON file could not be parsed.
    #[error("invalid JSON in {path}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// A line of the metrics log could not be parsed.
    #[error("{path}:{line}: invalid metrics record")]
    MetricsLine {
        /// The log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The metrics log's epochs do not count up from 1.
    #[error("{path}:{line}: expected epoch {expected}, found epoch {found}")]
    EpochOutOfOrder {
        /// The log.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The epoch that line should hold.
        expected: usize,
        /// The epoch it holds.
        found: usize,
    },
}

impl ArtifactError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Write { path, .. }
            | Self::Read { path, .. }
            | Self::Serialize { path, .. }
            | Self::Parse { path, .. }
            | Self::MetricsLine { path, .. }
            | Self::EpochOutOfOrder { path, .. } => path,
        }
    }

    /// True when the error is a read of a file that does not exist, e.g.
    /// resuming from a run directory that never finished an epoch.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Read { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// The workspace's one atomic write, re-exported where the run-directory files are written.
pub use cae_core::atomic::write_atomic;

/// Serializes `value` as pretty JSON (with a trailing newline) and writes it
/// atomically to `path`.
pub fn write_json<T: Serialize + ?Sized>(path: &Path, value: &T) -> Result<(), ArtifactError> {
    let mut bytes =
        serde_json::to_vec_pretty(value).map_err(|source| ArtifactError::Serialize {
            path: path.to_path_buf(),
            source,
        })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|source| ArtifactError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads a JSON document written by [`write_json`] (or by hand).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, ArtifactError> {
    let bytes = fs::read(path).map_err(|source| ArtifactError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| ArtifactError::Parse {
        path: path.to_path_buf(),
        source,
    })
}

/// One epoch's numbers, as logged to `metrics.jsonl` / `metrics.csv`.
///
/// Losses are per value (the reconstruction loss summed over values / value count, averaged
/// over samples), so they are comparable across input sizes. The reconstruction figures are
/// written under the model's loss: `train_bce`/`test_bce`, or `train_mse`/`test_mse` for a model
/// trained with the squared error (see [`MetricsLog::with_loss`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean reconstruction loss per value of the epoch's training batches.
    #[serde(
        rename = "train_bce",
        alias = "train_mse",
        deserialize_with = "f64_or_nan"
    )]
    pub train_reconstruction: f64,
    /// Mean Jacobian penalty (unweighted) of the epoch's training batches.
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_penalty: f64,
    /// Mean objective (reconstruction + λ·penalty) of the epoch's training batches.
    #[serde(deserialize_with = "f64_or_nan")]
    pub train_total: f64,
    /// Mean reconstruction loss per value over the test set after the epoch.
    #[serde(
        rename = "test_bce",
        alias = "test_mse",
        deserialize_with = "f64_or_nan"
    )]
    pub test_reconstruction: f64,
    /// Mean `‖J‖²_F` over the test set after the epoch.
    #[serde(deserialize_with = "f64_or_nan")]
    pub test_penalty: f64,
    /// Mean Frobenius norm of the encoder Jacobian over the test set.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_jacobian_frobenius: f64,
    /// Wall-clock seconds spent training in the epoch; the test pass after it is not counted.
    #[serde(deserialize_with = "f64_or_nan")]
    pub seconds: f64,
    /// Training samples per wall-clock second in the epoch.
    #[serde(deserialize_with = "f64_or_nan")]
    pub samples_per_second: f64,
    /// The learning rate of the epoch's last step.
    #[serde(deserialize_with = "f64_or_nan")]
    pub learning_rate: f64,
}

/// serde_json writes NaN and infinities as `null`; read `null` back as NaN so
/// that a diverged epoch does not make the whole log unreadable on resume.
fn f64_or_nan<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// CSV column names, in [`EpochMetrics`] field order, for a model trained with `loss`.
fn csv_header(loss: ReconstructionLoss) -> String {
    let key = loss.key();
    format!(
        "epoch,train_{key},train_penalty,train_total,test_{key},test_penalty,\
mean_jacobian_frobenius,seconds,samples_per_second,learning_rate"
    )
}

impl EpochMetrics {
    fn write_csv_row(&self, out: &mut String) {
        // `{}` on f64 prints the shortest string that parses back exactly.
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{}",
            self.epoch,
            self.train_reconstruction,
            self.train_penalty,
            self.train_total,
            self.test_reconstruction,
            self.test_penalty,
            self.mean_jacobian_frobenius,
            self.seconds,
            self.samples_per_second,
            self.learning_rate,
        );
    }
}

/// All epochs of a run so far, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsLog {
    epochs: Vec<EpochMetrics>,
    loss: ReconstructionLoss,
}

impl MetricsLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// The log of a model trained with `loss`, whose reconstruction figures the files name after
    /// it (`test_bce` or `test_mse`).
    pub fn with_loss(mut self, loss: ReconstructionLoss) -> Self {
        self.loss = loss;
        self
    }

    /// The reconstruction loss the figures are of.
    pub fn loss(&self) -> ReconstructionLoss {
        self.loss
    }

    /// Appends one epoch.
    pub fn push(&mut self, metrics: EpochMetrics) {
        self.epochs.push(metrics);
    }

    /// Every epoch, first to last.
    pub fn epochs(&self) -> &[EpochMetrics] {
        &self.epochs
    }

    /// The latest epoch, if any.
    pub fn last(&self) -> Option<&EpochMetrics> {
        self.epochs.last()
    }

    /// Number of epochs logged.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch is logged.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }

    /// Drops epochs after `epoch`; used when resuming from a checkpoint that
    /// is older than the log (a crash between writing the two).
    pub fn truncate_to_epoch(&mut self, epoch: usize) {
        self.epochs.retain(|m| m.epoch <= epoch);
    }

    /// The log as JSON lines, one epoch a line.
    pub fn to_jsonl(&self) -> Vec<u8> {
        let mut jsonl = String::new();
        for metrics in &self.epochs {
            // invariant: plain numbers; serde_json cannot fail on them.
            let line = serde_json::to_string(metrics).expect("metrics always serialise");
            match self.loss {
                ReconstructionLoss::Bce => jsonl.push_str(&line),
                // The keys are fixed names, each once in a line of numbers.
                ReconstructionLoss::Mse => jsonl.push_str(
                    &line
                        .replacen("\"train_bce\":", "\"train_mse\":", 1)
                        .replacen("\"test_bce\":", "\"test_mse\":", 1),
                ),
            }
            jsonl.push('\n');
        }
        jsonl.into_bytes()
    }

    /// The log as CSV with a header row.
    pub fn to_csv(&self) -> String {
        let header = csv_header(self.loss);
        let mut csv = String::with_capacity(header.len() + 1 + self.epochs.len() * 160);
        csv.push_str(&header);
        csv.push('\n');
        for metrics in &self.epochs {
            metrics.write_csv_row(&mut csv);
        }
        csv
    }

    /// Rewrites `dir/metrics.jsonl` and `dir/metrics.csv` from scratch.
    ///
    /// Rewriting (rather than appending) keeps each file atomic; the log is a
    /// few hundred lines at most, so the cost is negligible.
    pub fn write(&self, dir: &Path) -> Result<(), ArtifactError> {
        for (name, bytes) in [
            (METRICS_JSONL, self.to_jsonl()),
            (METRICS_CSV, self.to_csv().into_bytes()),
        ] {
            let path = dir.join(name);
            write_atomic(&path, &bytes).map_err(|source| ArtifactError::Write { path, source })?;
        }
        Ok(())
    }

    /// Reads `dir/metrics.jsonl` back.
    pub fn read(dir: &Path) -> Result<MetricsLog, ArtifactError> {
        let path = dir.join(METRICS_JSONL);
        let text = fs::read_to_string(&path).map_err(|source| ArtifactError::Read {
            path: path.clone(),
            source,
        })?;
        Self::from_jsonl(&text, &path)
    }

    /// Parses JSON lines written by [`MetricsLog::to_jsonl`]; `path` names them in errors.
    ///
    /// Blank lines are skipped. Epochs must be numbered 1, 2, 3, ... in order:
    /// anything else means the log does not belong to one continuous run.
    pub fn from_jsonl(text: &str, path: &Path) -> Result<MetricsLog, ArtifactError> {
        let mut log = MetricsLog::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let line_number = index + 1;
            if line.contains("\"test_mse\":") {
                log.loss = ReconstructionLoss::Mse;
            }
            let metrics: EpochMetrics =
                serde_json::from_str(line).map_err(|source| ArtifactError::MetricsLine {
                    path: path.to_path_buf(),
                    line: line_number,
                    source,
                })?;
            let expected = log.len() + 1;
            if metrics.epoch != expected {
                return Err(ArtifactError::EpochOutOfOrder {
                    path: path.to_path_buf(),
                    line: line_number,
                    expected,
                    found: metrics.epoch,
                });
            }
            log.push(metrics);
        }
        Ok(log)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(epoch: usize) -> EpochMetrics {
        let e = epoch as f64;
        EpochMetrics {
            epoch,
            train_reconstruction: 0.3 / e,
            train_penalty: 0.01 / e,
            train_total: 0.31 / e,
            test_reconstruction: 0.32 / e,
            test_penalty: 0.011 / e,
            mean_jacobian_frobenius: 4.5 - 0.1 * e,
            seconds: 12.25,
            samples_per_second: 4897.959183673469,
            learning_rate: 1e-3,
        }
    }

    fn log_of(epochs: usize) -> MetricsLog {
        let mut log = MetricsLog::new();
        for epoch in 1..=epochs {
            log.push(sample(epoch));
        }
        log
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn metrics_round_trip_through_jsonl_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let log = log_of(3);
        log.write(dir.path()).unwrap();
        let read = MetricsLog::read(dir.path()).unwrap();
        assert_eq!(read, log);
        let text = fs::read_to_string(dir.path().join(METRICS_JSONL)).unwrap();
        assert_eq!(text.lines().count(), 3);
    }

    #[test]
    fn nan_metrics_survive_the_round_trip_as_nan() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = MetricsLog::new();
        log.push(EpochMetrics {
            train_reconstruction: f64::NAN,
            ..sample(1)
        });
        log.write(dir.path()).unwrap();
        let read = MetricsLog::read(dir.path()).unwrap();
        assert!(read.epochs()[0].train_reconstruction.is_nan());
        assert_eq!(
            read.epochs()[0].test_reconstruction,
            sample(1).test_reconstruction
        );
    }

    #[test]
    fn csv_has_header_and_one_row_per_epoch() {
        let dir = tempfile::tempdir().unwrap();
        log_of(4).write(dir.path()).unwrap();
        let csv = fs::read_to_string(dir.path().join(METRICS_CSV)).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 1 + 4);
        assert_eq!(lines[0], csv_header(ReconstructionLoss::Bce));

        // The header names exactly the JSON fields, in order, so the two files
        // can't drift apart when a field is added.
        let json = serde_json::to_value(sample(1)).unwrap();
        let columns: Vec<&str> = lines[0].split(',').collect();
        assert_eq!(columns.len(), json.as_object().unwrap().len());
        for column in &columns {
            assert!(json.get(*column).is_some(), "no field named {column}");
        }

        for (i, row) in lines[1..].iter().enumerate() {
            let cells: Vec<&str> = row.split(',').collect();
            assert_eq!(cells.len(), columns.len());
            assert_eq!(cells[0], (i + 1).to_string());
            let test_reconstruction: f64 = cells[4].parse().unwrap();
            assert_eq!(test_reconstruction, sample(i + 1).test_reconstruction);
        }
    }

    #[test]
    fn empty_log_writes_header_only_csv_and_reads_back_empty() {
        let dir = tempfile::tempdir().unwrap();
        MetricsLog::new().write(dir.path()).unwrap();
        let csv = fs::read_to_string(dir.path().join(METRICS_CSV)).unwrap();
        assert_eq!(csv, format!("{}\n", csv_header(ReconstructionLoss::Bce)));
        assert!(MetricsLog::read(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn metrics_write_leaves_only_the_two_files() {
        let dir = tempfile::tempdir().unwrap();
        log_of(2).write(dir.path()).unwrap();
        log_of(3).write(dir.path()).unwrap();
        assert_eq!(dir_entries(dir.path()), vec![METRICS_CSV, METRICS_JSONL]);
        assert_eq!(MetricsLog::read(dir.path()).unwrap().len(), 3);
    }

    #[test]
    fn corrupt_metrics_line_error_names_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        log_of(2).write(dir.path()).unwrap();
        let path = dir.path().join(METRICS_JSONL);
        let mut text = fs::read_to_string(&path).unwrap();
        text.push_str("{\"epoch\": 3, \"train_reconstruction\": 0.1\n"); // truncated record
        fs::write(&path, text).unwrap();

        let err = MetricsLog::read(dir.path()).unwrap_err();
        assert!(
            matches!(err, ArtifactError::MetricsLine { line: 3, .. }),
            "{err:?}"
        );
        assert_eq!(err.path(), path);
        let message = err.to_string();
        assert!(message.contains("metrics.jsonl:3"), "{message}");
    }

    #[test]
    fn out_of_order_epochs_are_rejected_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = MetricsLog::new();
        log.push(sample(1));
        log.push(sample(3));
        log.write(dir.path()).unwrap();
        let err = MetricsLog::read(dir.path()).unwrap_err();
        assert!(
            matches!(
                err,
                ArtifactError::EpochOutOfOrder {
                    line: 2,
                    expected: 2,
                    found: 3,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn missing_metrics_file_is_reported_as_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = MetricsLog::read(dir.path()).unwrap_err();
        assert!(err.is_not_found());
        assert!(err.to_string().contains(METRICS_JSONL));
    }

    #[test]
    fn truncate_to_epoch_drops_later_epochs() {
        let mut log = log_of(5);
        log.truncate_to_epoch(3);
        assert_eq!(log.len(), 3);
        assert_eq!(log.last().unwrap().epoch, 3);
    }

    #[test]
    fn json_round_trip_and_parse_error_names_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics-final.json");
        write_json(&path, &sample(7)).unwrap();
        let back: EpochMetrics = read_json(&path).unwrap();
        assert_eq!(back, sample(7));
        assert!(fs::read_to_string(&path).unwrap().ends_with("}\n"));

        fs::write(&path, b"{ not json").unwrap();
        let err = read_json::<EpochMetrics>(&path).unwrap_err();
        assert!(matches!(err, ArtifactError::Parse { .. }));
        assert!(err.to_string().contains("metrics-final.json"), "{err}");
    }
}
