//! The training loop end to end on small data: the loss falls, every artifact is written, a resumed or
//! interrupted run equals an uninterrupted one, and a diverging run stops cleanly.
use std::sync::atomic::{AtomicBool, Ordering};

use cae_core::{Activation, Architecture, CaeConfig, MlpConfig, PenaltyMethod};
use cae_data::Dataset;
use cae_train::{
    files, BatchReport, RunConfig, Silent, TrainConfig, TrainError, TrainObserver, Trainer,
};
use candle_core::Device;

mod common;
use common::synthetic;

fn run_config(epochs: usize, penalty_hidden: &[usize]) -> RunConfig {
    RunConfig {
        model: CaeConfig {
            height: 8,
            width: 8,
            architecture: Architecture::Mlp(MlpConfig {
                hidden: penalty_hidden.to_vec(),
                code_dim: 16,
                hidden_activation: Activation::Tanh,
                code_activation: Activation::Sigmoid,
                tied_weights: false,
            }),
            penalty: PenaltyMethod::Exact,
            init: cae_core::WeightInit::Pytorch,
            loss: cae_core::ReconstructionLoss::Bce,
            standardisation: None,
        },
        train: TrainConfig {
            epochs,
            batch_size: 50,
            learning_rate: 1e-2,
            lambda: 1e-3,
            seed: 7,
            eval_batch_size: 64,
            ..TrainConfig::default()
        },
        dataset: "synthetic".into(),
        data: Default::default(),
    }
}

fn weights(dir: &std::path::Path) -> Vec<(String, Vec<u32>)> {
    let loaded = cae_core::read_model(&dir.join(files::LAST_MODEL), &Device::Cpu).unwrap();
    let mut out: Vec<_> = loaded
        .tensors
        .iter()
        .map(|(k, t)| {
            (
                k.clone(),
                t.flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect(),
            )
        })
        .collect();
    out.sort();
    out
}

fn losses(dir: &std::path::Path) -> Vec<(f64, f64, f64)> {
    cae_train::artifacts::MetricsLog::read(dir)
        .unwrap()
        .epochs()
        .iter()
        .map(|m| {
            (
                m.train_reconstruction,
                m.train_penalty,
                m.test_reconstruction,
            )
        })
        .collect()
}

#[test]
fn loss_falls_and_every_artifact_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let (train, test) = (synthetic(300, 1), synthetic(100, 2));
    let mut trainer = Trainer::new(run_config(4, &[]), &out, &Device::Cpu).unwrap();
    let summary = trainer
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    let log = trainer.metrics().epochs().to_vec();
    assert_eq!(log.len(), 4);
    assert!(
        log[3].train_reconstruction < log[0].train_reconstruction,
        "{log:?}"
    );
    assert!(
        log[3].test_reconstruction < log[0].test_reconstruction,
        "{log:?}"
    );
    assert!(log
        .iter()
        .all(|m| m.train_penalty > 0.0 && m.mean_jacobian_frobenius > 0.0));
    assert_eq!(summary.last.unwrap().epoch, 4);
    for f in [
        files::CONFIG,
        files::LAST_MODEL,
        files::BEST_MODEL,
        "checkpoint-000004/state.safetensors",
        "checkpoint-000004/model.safetensors",
        "checkpoint-000004/metrics.jsonl",
        files::LOSS_PLOT,
        files::RECONSTRUCTIONS,
        "metrics.jsonl",
        "metrics.csv",
    ] {
        let p = out.join(f);
        assert!(
            p.metadata().map(|m| m.len() > 0).unwrap_or(false),
            "{f} missing or empty"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp") || n.contains(".tmp."))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // The saved model, loaded as `cae-cli eval` loads it, reproduces the logged test BCE (sums in
    // f64, other batch sizes, `cae-cli eval`'s reconstruction figure): 1e-7 relative.
    let model = cae_core::ContractiveAutoencoder::load(
        &out.join(files::LAST_MODEL),
        candle_core::DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let eval = cae_train::evaluate(&model, &test, 1000, &Device::Cpu).unwrap();
    let (report, _) =
        cae_train::analysis::reconstruction_by_class(&model, &test, &Device::Cpu).unwrap();
    for (what, bce) in [("evaluate", eval.reconstruction), ("eval", report.overall)] {
        assert!(
            (bce - log[3].test_reconstruction).abs() < 1e-7 * log[3].test_reconstruction,
            "{what}: {bce} vs logged {}",
            log[3].test_reconstruction
        );
    }
}

#[test]
fn two_epochs_equal_one_epoch_then_resume_for_one_more() {
    for hidden in [vec![], vec![12]] {
        let dir = tempfile::tempdir().unwrap();
        let (train, test) = (synthetic(230, 3), synthetic(60, 4)); // 230: a partial last batch
        let straight = dir.path().join("straight");
        Trainer::new(run_config(2, &hidden), &straight, &Device::Cpu)
            .unwrap()
            .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
            .unwrap();

        let split = dir.path().join("split");
        Trainer::new(run_config(1, &hidden), &split, &Device::Cpu)
            .unwrap()
            .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
            .unwrap();
        Trainer::resume(&split, Some(2), &Device::Cpu)
            .unwrap()
            .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
            .unwrap();

        assert_eq!(
            weights(&straight),
            weights(&split),
            "hidden {hidden:?}: weights differ after resume"
        );
        assert_eq!(
            losses(&straight),
            losses(&split),
            "hidden {hidden:?}: metrics differ after resume"
        );
    }
}

/// Requests a stop after `at` batches, like Ctrl-C would.
struct StopAfter<'a> {
    at: usize,
    seen: usize,
    stop: &'a AtomicBool,
}
impl TrainObserver for StopAfter<'_> {
    fn on_batch(&mut self, _: &BatchReport) {
        self.seen += 1;
        if self.seen == self.at {
            self.stop.store(true, Ordering::SeqCst);
        }
    }
}

/// Stops a 2-epoch run after `at` batches (6 a epoch), resumes it, and compares it with an
/// uninterrupted run.
fn interrupted_run_resumes_to_the_same_result(at: usize, epoch: usize, batches_done: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (synthetic(300, 5), synthetic(60, 6));
    let straight = dir.path().join("straight");
    Trainer::new(run_config(2, &[]), &straight, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();

    let interrupted = dir.path().join("interrupted");
    let stop = AtomicBool::new(false);
    let mut observer = StopAfter {
        at,
        seen: 0,
        stop: &stop,
    };
    let err = Trainer::new(run_config(2, &[]), &interrupted, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut observer, &stop)
        .unwrap_err();
    match &err {
        TrainError::Interrupted {
            epoch: e,
            batches_done: b,
            ..
        } => assert_eq!((*e, *b), (epoch, batches_done)),
        other => panic!("expected an interruption, got {other}"),
    }
    assert!(err.to_string().contains("saved"), "{err}");
    Trainer::resume(&interrupted, None, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    assert_eq!(weights(&straight), weights(&interrupted));
    assert_eq!(losses(&straight), losses(&interrupted));
}

#[test]
fn interruption_mid_epoch_saves_and_resumes_to_the_same_result() {
    interrupted_run_resumes_to_the_same_result(8, 2, 2);
}

/// Ctrl-C in epoch 1, before any checkpoint: once it could not be resumed.
#[test]
fn interruption_in_epoch_one_resumes_to_the_same_result() {
    interrupted_run_resumes_to_the_same_result(2, 1, 2);
}

#[test]
fn diverging_run_stops_with_a_clear_error_and_writes_no_bad_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut cfg = run_config(3, &[]);
    cfg.train.learning_rate = 1e30;
    let err = Trainer::new(cfg, &out, &Device::Cpu)
        .unwrap()
        .fit(
            &synthetic(200, 1),
            &synthetic(50, 2),
            &mut Silent,
            &AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(
        matches!(
            err,
            TrainError::NonFinite { .. }
                | TrainError::Diverged { .. }
                | TrainError::NonFiniteWeights { .. }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("last good checkpoint"), "{err}");
    // What was kept is finite: model files with non-finite weights do not even load.
    for name in [files::LAST_MODEL, files::BEST_MODEL] {
        if out.join(name).exists() {
            cae_core::read_model(&out.join(name), &Device::Cpu).unwrap();
        }
    }
}

#[test]
fn existing_run_directory_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("keep.txt"), "x").unwrap();
    let err = Trainer::new(run_config(1, &[]), dir.path(), &Device::Cpu).unwrap_err();
    assert!(matches!(err, TrainError::NotEmpty { .. }), "{err}");
    assert_eq!(std::fs::read(dir.path().join("keep.txt")).unwrap(), b"x");
}

#[test]
fn invalid_settings_are_rejected_before_any_work() {
    for (edit, needle) in [
        (
            Box::new(|c: &mut TrainConfig| c.batch_size = 0) as Box<dyn Fn(&mut TrainConfig)>,
            "batch size",
        ),
        (Box::new(|c: &mut TrainConfig| c.lambda = -1.0), "lambda"),
        (
            Box::new(|c: &mut TrainConfig| c.learning_rate = 0.0),
            "learning rate",
        ),
        (Box::new(|c: &mut TrainConfig| c.epochs = 0), "epochs"),
    ] {
        let mut cfg = TrainConfig::default();
        edit(&mut cfg);
        let err = cfg.validate().unwrap_err().to_string();
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn real_mnist_subset_trains_when_the_dataset_is_available() {
    let Some(dir) = std::env::var_os("CAE_TEST_MNIST_DIR") else {
        eprintln!("SKIPPED: set CAE_TEST_MNIST_DIR to the MNIST directory to run this test");
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let train = Dataset::load_dir(&dir, cae_data::Split::Train)
        .unwrap()
        .take(1200);
    let test = Dataset::load_dir(&dir, cae_data::Split::Test)
        .unwrap()
        .take(600);
    let out = tempfile::tempdir().unwrap();
    let run = RunConfig {
        model: CaeConfig::preset("small").unwrap(),
        train: TrainConfig {
            epochs: 6,
            // 72 steps in all: enough for the loss to leave the mean-image plateau (≈0.26).
            batch_size: 100,
            ..TrainConfig::default()
        },
        dataset: dir.display().to_string(),
        data: Default::default(),
    };
    let mut trainer = Trainer::new(run, &out.path().join("run"), &Device::Cpu).unwrap();
    trainer
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    let log = trainer.metrics().epochs();
    assert!(
        log[5].test_reconstruction < log[0].test_reconstruction
            && log[5].test_reconstruction < 0.22,
        "{log:?}"
    );
}

fn names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What kills leave behind — a half-written checkpoint, a stale temporary, an older checkpoint
/// not yet removed, exports older than the checkpoint — is cleaned up or rewritten on resume.
#[test]
fn resume_reconciles_what_a_kill_left_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (synthetic(200, 9), synthetic(40, 10));
    let straight = dir.path().join("straight");
    Trainer::new(run_config(3, &[]), &straight, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();

    let run = dir.path().join("run");
    Trainer::new(run_config(1, &[]), &run, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    let one_epoch_metrics = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let one_epoch_model = std::fs::read(run.join(files::LAST_MODEL)).unwrap();
    Trainer::resume(&run, Some(2), &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    // A kill after checkpoint 2's commit, before its exports and before checkpoint 1's removal.
    let old = run.join("checkpoint-000001");
    std::fs::create_dir(&old).unwrap();
    for f in [files::LAST_MODEL, files::STATE, "metrics.jsonl"] {
        std::fs::copy(run.join("checkpoint-000002").join(f), old.join(f)).unwrap();
    }
    std::fs::write(run.join("metrics.jsonl"), &one_epoch_metrics).unwrap();
    std::fs::write(run.join(files::LAST_MODEL), &one_epoch_model).unwrap();
    // And an earlier kill in the middle of writing checkpoint 3, and of an export.
    let half = run.join(".checkpoint-000003.4242.7.tmp");
    std::fs::create_dir(&half).unwrap();
    std::fs::write(half.join(files::LAST_MODEL), b"half a model").unwrap();
    std::fs::write(run.join(".metrics.csv.4242.8.tmp"), b"epoch,tr").unwrap();

    let mut trainer = Trainer::resume(&run, Some(3), &Device::Cpu).unwrap();
    assert_eq!(trainer.metrics().len(), 2, "the log is the checkpoint's");
    assert_eq!(
        names(&run).iter().filter(|n| n.starts_with('.')).count(),
        0,
        "{:?}",
        names(&run)
    );
    assert!(!old.exists());
    trainer
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    drop(trainer);
    assert_eq!(names(&run), names(&straight));
    assert_eq!(weights(&straight), weights(&run));
    assert_eq!(losses(&straight), losses(&run));
    assert_eq!(
        std::fs::read(straight.join(files::BEST_MODEL)).unwrap(),
        std::fs::read(run.join(files::BEST_MODEL)).unwrap()
    );
}

#[test]
fn a_run_directory_has_one_writer_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let first = Trainer::new(run_config(1, &[]), &run, &Device::Cpu).unwrap();
    let err = Trainer::resume(&run, None, &Device::Cpu).unwrap_err();
    assert!(matches!(err, TrainError::Locked { .. }), "{err}");
    assert!(err.to_string().contains("another process"), "{err}");
    drop(first);
    Trainer::resume(&run, None, &Device::Cpu).unwrap();
}

#[test]
fn epochs_on_resume_are_the_new_total_and_never_fewer_than_trained() {
    let dir = tempfile::tempdir().unwrap();
    let (train, test) = (synthetic(100, 11), synthetic(20, 12));
    let run = dir.path().join("run");
    Trainer::new(run_config(2, &[]), &run, &Device::Cpu)
        .unwrap()
        .fit(&train, &test, &mut Silent, &AtomicBool::new(false))
        .unwrap();
    let err = Trainer::resume(&run, Some(1), &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("already trained"), "{err}");
    let saved = cae_train::SavedRun::read(&run).unwrap();
    assert_eq!(saved.run.train.epochs, 2);
    assert!(saved.overrides.is_empty());
    // The default's value is a total like any other.
    let trainer = Trainer::resume(&run, Some(20), &Device::Cpu).unwrap();
    assert_eq!(trainer.run_config().train.epochs, 20);
    let saved = cae_train::SavedRun::read(&run).unwrap();
    assert_eq!(
        saved.overrides[0].change,
        cae_train::Change::Epochs { from: 2, to: 20 }
    );
}
