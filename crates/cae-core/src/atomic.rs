//! Crash-safe file writes, the one implementation the whole workspace uses.
//!
//! It lives in `cae-core` because that is the only crate every writer (cae-data's downloads,
//! cae-train's run directories, the CLI's outputs) can depend on without a cycle, and it needs
//! nothing but `std`, so the core gains no dependency.
//!
//! A write goes to a hidden temporary in the destination's directory (rename is atomic only within
//! one file system), is fsynced, renamed over the destination, and the directory is fsynced so the
//! rename itself survives a power loss. Readers see the old file or the whole new one, never a
//! prefix. Temporaries are named `.<name>.<pid>.<n>.tmp`: unique across threads and processes, and
//! recognisable by [`is_temporary`] so that an owner of the directory can remove the ones a killed
//! process left ([`remove_temporaries`]).
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The suffix of every temporary this module creates.
pub const TEMP_SUFFIX: &str = ".tmp";

/// Writes `bytes` to `path` atomically and durably (see the module docs).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    StagedFile::new(path, bytes)?.commit()
}

/// A file written and fsynced under a temporary name, not yet in place. Several can be staged
/// and then committed together, so that a failure while writing leaves none of them behind.
/// Dropped uncommitted, the temporary is removed.
#[derive(Debug)]
pub struct StagedFile {
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl StagedFile {
    /// Writes `bytes` to a temporary beside `dest` and fsyncs it.
    pub fn new(dest: &Path, bytes: &[u8]) -> io::Result<Self> {
        let temp = temp_path(dest)?;
        let staged = Self {
            temp,
            dest: dest.to_path_buf(),
            committed: false,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&staged.temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(staged)
    }

    /// Where the file will be once committed.
    pub fn dest(&self) -> &Path {
        &self.dest
    }

    /// Renames the temporary over the destination and fsyncs the directory.
    pub fn commit(mut self) -> io::Result<()> {
        fs::rename(&self.temp, &self.dest)?;
        self.committed = true;
        sync_dir(parent_dir(&self.dest))
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the error that made us give up is the one worth reporting.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

/// A fresh temporary name beside `dest`: `.<name>.<pid>.<n>.tmp`.
pub fn temp_path(dest: &Path) -> io::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = dest.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} has no file name", dest.display()),
        )
    })?;
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut temp = OsString::from(".");
    temp.push(name);
    temp.push(format!(".{}.{n}{TEMP_SUFFIX}", std::process::id()));
    Ok(parent_dir(dest).join(temp))
}

/// Whether a directory entry's name is one of this module's temporaries.
pub fn is_temporary(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && name.ends_with(TEMP_SUFFIX)
}

/// Removes every temporary (file or directory) directly in `dir`; returns how many. Only for a
/// directory the caller owns exclusively (for instance under a lock): another process's
/// temporaries would be removed too.
pub fn remove_temporaries(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if !is_temporary(&entry.file_name()) {
            continue;
        }
        if entry.file_type()?.is_dir() {
            fs::remove_dir_all(entry.path())?;
        } else {
            fs::remove_file(entry.path())?;
        }
        removed += 1;
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes the entries of `dir` (creations, renames, removals) durable.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; its renames are durable enough.
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        fs::write(&path, b"old contents that are longer than the new ones").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(names(dir.path()), ["config.json"]);
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // Renaming a file over a non-empty directory fails on every platform.
        let target = dir.path().join("occupied");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        assert_eq!(names(dir.path()), ["occupied"]);
    }

    #[test]
    fn staged_files_appear_only_when_committed() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let staged_a = StagedFile::new(&a, b"1").unwrap();
        let staged_b = StagedFile::new(&b, b"2").unwrap();
        assert!(!a.exists() && !b.exists());
        assert_eq!(names(dir.path()).len(), 2);
        drop(staged_b);
        staged_a.commit().unwrap();
        assert_eq!(names(dir.path()), ["a"]);
    }

    #[test]
    fn temporaries_are_recognised_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let temp = temp_path(&dir.path().join("model.safetensors")).unwrap();
        assert!(is_temporary(temp.file_name().unwrap()));
        fs::write(&temp, b"half").unwrap();
        fs::create_dir(dir.path().join(".checkpoint-3.99.0.tmp")).unwrap();
        fs::write(dir.path().join("keep.tmp"), b"not hidden: not ours").unwrap();
        assert_eq!(remove_temporaries(dir.path()).unwrap(), 2);
        assert_eq!(names(dir.path()), ["keep.tmp"]);
    }
}
