//! Fault injection: `cae-cli train` is killed with SIGKILL at random instants — before it has
//! written anything, in epoch 1 before the first checkpoint, inside checkpoint writes, between
//! checkpoints — then resumed (or, when it died before saving its configuration, started again),
//! and the result compared with an uninterrupted run: the same model bytes, the same metrics,
//! the same files, no temporaries.
//!
//! Kill instants come from a seeded RNG over the events of a reference run (its `-v` log lines:
//! batches, epochs, each checkpoint file written) plus a random delay. The test hook
//! `CAE_TEST_SLOW_CHECKPOINT_MS` makes the process sleep after each checkpoint file it writes,
//! so that a delay after a "checkpoint file written" line lands inside the checkpoint write.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::helpers::{deterministic_metrics, files_in, s, BIN};
use rand::{Rng, SeedableRng};

const TRIALS: usize = 21;
const SLOW_MS: u64 = 15;
const CHECKPOINT_EVENT: &str = "checkpoint file written";

fn train_command(data: &Path, run: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["-v", "train", "--preset", "small", "--dataset", s(data)])
        .args([
            "--epochs",
            "3",
            "--batch-size",
            "25",
            "--device",
            "cpu",
            "--offline",
        ])
        .args(["--out", s(run)])
        .env("CAE_TEST_SLOW_CHECKPOINT_MS", SLOW_MS.to_string())
        .env_remove("RUST_LOG");
    cmd
}

fn resume_command(run: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(["train", "--resume", s(run), "--device", "cpu", "--offline"]);
    cmd
}

/// Runs `cmd` with stderr piped; returns its lines as they come.
fn spawn_logged(cmd: &mut Command) -> (std::process::Child, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cae-cli starts");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Where a killed run stood, judged from what it left.
fn phase(run: &Path) -> &'static str {
    if !run.join("config.json").exists() {
        return "before config.json";
    }
    let names = files_in(run);
    if names.iter().any(|n| n.starts_with(".checkpoint-")) {
        "inside a checkpoint write"
    } else if !names.iter().any(|n| n.starts_with("checkpoint-")) {
        "epoch 1, no checkpoint yet"
    } else {
        "between checkpoints"
    }
}

#[test]
fn killed_runs_resume_to_the_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    crate::helpers::write_dataset(&data, 100, 20, 3);

    let reference = dir.path().join("reference");
    let (mut child, lines) = spawn_logged(&mut train_command(&data, &reference));
    let events: Vec<String> = lines.iter().collect();
    assert!(child.wait().unwrap().success(), "{events:#?}");
    let first_checkpoint = events
        .iter()
        .position(|l| l.contains(CHECKPOINT_EVENT))
        .expect("the reference run logs its checkpoint writes");
    let checkpoint_events: Vec<usize> = (0..events.len())
        .filter(|&i| events[i].contains(CHECKPOINT_EVENT))
        .collect();
    let expected_files = files_in(&reference);
    let expected_model = std::fs::read(reference.join("model.safetensors")).unwrap();
    let expected_best = std::fs::read(reference.join("best.safetensors")).unwrap();
    let expected_metrics = deterministic_metrics(&reference);
    assert_eq!(expected_metrics.len(), 3);

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(14);
    let mut phases = std::collections::BTreeMap::<&str, usize>::new();
    for trial in 0..TRIALS {
        // A third each: before the first checkpoint, right after a checkpoint file, anywhere;
        // the first trial at once, before the process has written anything.
        let event = match trial % 3 {
            0 => rng.random_range(0..first_checkpoint),
            1 => checkpoint_events[rng.random_range(0..checkpoint_events.len())],
            _ => rng.random_range(0..events.len()),
        };
        let delay = Duration::from_micros(rng.random_range(0..SLOW_MS * 1000));
        let (event, delay) = if trial == 0 {
            (0, Duration::ZERO)
        } else {
            (event, delay)
        };
        let run = dir.path().join(format!("trial-{trial}"));
        let (mut child, lines) = spawn_logged(&mut train_command(&data, &run));
        // The first event is the process start itself: with no wait, it dies before any output.
        for _ in 0..event {
            if lines.recv().is_err() {
                break;
            }
        }
        std::thread::sleep(delay);
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        let at = phase(&run);
        *phases.entry(at).or_default() += 1;

        let resumed = if run.join("config.json").exists() {
            resume_command(&run).output().unwrap()
        } else {
            train_command(&data, &run).output().unwrap()
        };
        assert!(
            resumed.status.success(),
            "trial {trial} (killed at event {event} + {delay:?}, {at}, {status}): {}",
            String::from_utf8_lossy(&resumed.stderr)
        );
        let what = format!("trial {trial}: killed at event {event} + {delay:?} ({at})");
        assert_eq!(files_in(&run), expected_files, "{what}");
        assert!(
            std::fs::read(run.join("model.safetensors")).unwrap() == expected_model,
            "{what}: model.safetensors differs"
        );
        assert!(
            std::fs::read(run.join("best.safetensors")).unwrap() == expected_best,
            "{what}: best.safetensors differs"
        );
        assert_eq!(deterministic_metrics(&run), expected_metrics, "{what}");
        std::fs::remove_dir_all(&run).unwrap();
    }
    eprintln!("kills by phase: {phases:?}");
    assert!(
        phases
            .get("inside a checkpoint write")
            .copied()
            .unwrap_or(0)
            > 0
            && phases
                .get("epoch 1, no checkpoint yet")
                .copied()
                .unwrap_or(0)
                > 0,
        "the kills did not reach both epoch 1 and checkpoint writes: {phases:?}"
    );
}
