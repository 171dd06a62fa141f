//! A run directory as a set of files committed together.
//!
//! Training state lives in checkpoint directories `checkpoint-<n>/` (model, optimizer state and
//! the metrics log up to that moment). Each is written whole into a hidden temporary directory,
//! every file fsynced, then made current by one rename and the run directory fsynced — the way
//! Orbax and PyTorch Lightning commit checkpoints — so a checkpoint is complete or absent whatever
//! instant the process dies at. Older checkpoints are removed only after a newer one is in place.
//! The files users read (`model.safetensors`, `best.safetensors`, `metrics.jsonl`, the plots) are
//! exports of the current checkpoint, rewritten from it on resume.
//!
//! While a process writes a run directory it holds an advisory lock on it, so a second writer
//! (two `--resume` of one run) is refused instead of interleaving with the first.
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cae_core::atomic::{is_temporary, remove_temporaries, sync_dir, temp_path};

use crate::TrainError;

/// Name prefix of committed checkpoint directories.
pub const CHECKPOINT_PREFIX: &str = "checkpoint-";

/// Test hook: milliseconds to sleep after each checkpoint file is written, so that a
/// fault-injection test can kill the process inside checkpoint writes (cae-cli's tests/cli/crash.rs).
/// It changes timing only, never what is written.
pub const SLOW_CHECKPOINT_ENV: &str = "CAE_TEST_SLOW_CHECKPOINT_MS";

/// Where the lock is taken on systems that cannot lock a directory handle.
const LOCK_FILE: &str = ".lock";

/// A run directory this process holds the write lock of.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
    /// Held open for the lock; released when dropped or when the process dies.
    _lock: File,
}

/// A committed checkpoint: its number and its directory.
#[derive(Debug)]
pub struct Checkpoint {
    pub number: u64,
    pub dir: PathBuf,
}

impl RunDir {
    /// Takes `path` for a fresh run: creates it, or accepts an existing directory that holds
    /// nothing but temporaries a killed process left.
    pub fn create(path: &Path) -> Result<Self, TrainError> {
        check_fresh(path)?;
        fs::create_dir_all(path)
            .map_err(|e| run_dir_error(path, format!("cannot create the directory: {e}")))?;
        let dir = Self::lock(path)?;
        // Again under the lock: another process may have started a run here meanwhile.
        check_fresh(path)?;
        dir.remove_temporaries()?;
        Ok(dir)
    }

    /// Takes an existing run directory (one with `config_name` in it) to continue it.
    pub fn open(path: &Path, config_name: &str) -> Result<Self, TrainError> {
        if !path.is_dir() {
            return Err(TrainError::NotARun {
                path: path.to_path_buf(),
                reason: if path.exists() {
                    "it is not a directory".into()
                } else {
                    "it does not exist".into()
                },
            });
        }
        if !path.join(config_name).is_file() {
            return Err(TrainError::NotARun {
                path: path.to_path_buf(),
                reason: format!("it has no {config_name}"),
            });
        }
        let dir = Self::lock(path)?;
        dir.remove_temporaries()?;
        Ok(dir)
    }

    fn lock(path: &Path) -> Result<Self, TrainError> {
        let file = lock_file(path)
            .map_err(|e| run_dir_error(path, format!("cannot open it to lock it: {e}")))?;
        match fs2::FileExt::try_lock_exclusive(&file) {
            Ok(()) => Ok(Self {
                path: path.to_path_buf(),
                _lock: file,
            }),
            Err(e) if e.kind() == fs2::lock_contended_error().kind() => Err(TrainError::Locked {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(run_dir_error(path, format!("cannot lock it: {e}"))),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    fn remove_temporaries(&self) -> Result<(), TrainError> {
        let removed = remove_temporaries(&self.path).map_err(|e| {
            run_dir_error(
                &self.path,
                format!("cannot remove a killed process's temporary files: {e}"),
            )
        })?;
        if removed > 0 {
            tracing::info!(removed, "removed temporary files a killed process left");
        }
        Ok(())
    }

    /// Every committed checkpoint, oldest first.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>, TrainError> {
        let mut found = Vec::new();
        let entries = fs::read_dir(&self.path)
            .map_err(|e| run_dir_error(&self.path, format!("cannot list the directory: {e}")))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let number = name
                .to_str()
                .and_then(|n| n.strip_prefix(CHECKPOINT_PREFIX))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(number) = number {
                found.push(Checkpoint {
                    number,
                    dir: entry.path(),
                });
            }
        }
        found.sort_by_key(|c| c.number);
        Ok(found)
    }

    /// The newest committed checkpoint; older ones (left by a kill between a commit and the
    /// clean-up after it) are removed.
    pub fn latest_checkpoint(&self) -> Result<Option<Checkpoint>, TrainError> {
        let mut all = self.checkpoints()?;
        let latest = all.pop();
        self.remove_checkpoints(&all)?;
        Ok(latest)
    }

    /// Writes `files` as checkpoint number `number`, all or nothing, then removes older ones.
    pub fn commit_checkpoint(
        &self,
        number: u64,
        files: &[(&str, &[u8])],
    ) -> Result<(), TrainError> {
        let name = format!("{CHECKPOINT_PREFIX}{number:06}");
        let dest = self.path.join(&name);
        let older = self.checkpoints()?;
        let temp = temp_path(&dest).map_err(|e| self.write_error(&dest, e))?;
        let staged = (|| {
            fs::create_dir(&temp)?;
            for (file, bytes) in files {
                write_synced(&temp.join(file), bytes)?;
                tracing::debug!(checkpoint = number, file, "checkpoint file written");
                slow_down_for_tests();
            }
            sync_dir(&temp)?;
            if dest.exists() {
                // Only a checkpoint this process's predecessor committed under the same number
                // and never cleaned up; it is older than what is being committed.
                fs::remove_dir_all(&dest)?;
            }
            fs::rename(&temp, &dest)?;
            sync_dir(&self.path)?;
            tracing::debug!(checkpoint = number, "checkpoint committed");
            Ok(())
        })();
        if let Err(e) = staged {
            let _ = fs::remove_dir_all(&temp);
            return Err(self.write_error(&dest, e));
        }
        let older: Vec<Checkpoint> = older.into_iter().filter(|c| c.dir != dest).collect();
        self.remove_checkpoints(&older)
    }

    fn remove_checkpoints(&self, old: &[Checkpoint]) -> Result<(), TrainError> {
        for checkpoint in old {
            fs::remove_dir_all(&checkpoint.dir)
                .map_err(|e| self.write_error(&checkpoint.dir, e))?;
        }
        if !old.is_empty() {
            sync_dir(&self.path).map_err(|e| self.write_error(&self.path, e))?;
        }
        Ok(())
    }

    fn write_error(&self, path: &Path, e: io::Error) -> TrainError {
        run_dir_error(path, format!("cannot write the checkpoint: {e}"))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn slow_down_for_tests() {
    if let Some(ms) = std::env::var(SLOW_CHECKPOINT_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// Whether `path` can hold a fresh run: it does not exist, or is a directory holding nothing but
/// temporaries a killed process left. Checks only; creates nothing.
pub fn check_fresh(path: &Path) -> Result<(), TrainError> {
    if !path.exists() {
        return Ok(());
    }
    if !path.is_dir() {
        return Err(run_dir_error(path, "exists and is not a directory"));
    }
    let occupied = fs::read_dir(path)
        .map_err(|e| run_dir_error(path, format!("cannot list the directory: {e}")))?
        .filter_map(|e| e.ok())
        .any(|e| !is_temporary(&e.file_name()) && e.file_name() != LOCK_FILE);
    if occupied {
        return Err(TrainError::NotEmpty {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// What the lock is taken on: the directory itself where the OS can lock a directory handle.
#[cfg(unix)]
fn lock_file(dir: &Path) -> io::Result<File> {
    File::open(dir)
}

#[cfg(not(unix))]
fn lock_file(dir: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
}

fn run_dir_error(path: &Path, message: impl Into<String>) -> TrainError {
    TrainError::RunDir {
        path: path.to_path_buf(),
        message: message.into(),
    }
}
