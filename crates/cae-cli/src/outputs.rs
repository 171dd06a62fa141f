//! The files `reconstruct` and `encode` write: checked before any work (writable, never one of
//! the inputs, never one file named twice), then written all or none.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::atomic::{parent_dir, StagedFile};

/// Refuses any output that is one of `inputs` (the same file, by whatever path) or an existing
/// directory, and any output whose directory cannot be written (or, for `will_create`, whose
/// nearest existing ancestor cannot). Creates nothing.
pub fn check(outputs: &[PathBuf], inputs: &[PathBuf], will_create: Option<&Path>) -> Result<()> {
    let inputs: HashSet<PathBuf> = inputs
        .iter()
        .filter_map(|p| std::fs::canonicalize(p).ok())
        .collect();
    let mut dirs = HashSet::new();
    let mut named = HashSet::new();
    for output in outputs {
        if !named.insert(resolved_output(output)) {
            bail!(
                "{}: named twice as an output; give each output its own file (nothing was written)",
                output.display()
            );
        }
        if output.is_dir() {
            bail!("{}: the output is a directory", output.display());
        }
        if let Ok(resolved) = std::fs::canonicalize(output) {
            if inputs.contains(&resolved) {
                bail!(
                    "{}: the output is one of the inputs; name another output file (nothing was written)",
                    output.display()
                );
            }
        }
        dirs.insert(parent_dir(output).to_path_buf());
    }
    for dir in dirs {
        let existing = match will_create {
            Some(created) if !dir.exists() && dir.starts_with(created) => nearest_existing(&dir)
                .with_context(|| {
                    format!("cannot create the output directory {}", created.display())
                })?,
            _ => dir,
        };
        check_writable(&existing)?;
    }
    Ok(())
}

/// Where `output` will be, by whatever path it is named: its directory resolved, its name kept.
fn resolved_output(output: &Path) -> PathBuf {
    let dir = std::fs::canonicalize(parent_dir(output))
        .unwrap_or_else(|_| parent_dir(output).to_path_buf());
    match output.file_name() {
        Some(name) => dir.join(name),
        None => output.to_path_buf(),
    }
}

fn nearest_existing(dir: &Path) -> Result<PathBuf> {
    let mut at = dir;
    while !at.exists() {
        at = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    Ok(at.to_path_buf())
}

/// Writes and removes a probe file: the one sure test that a directory takes new files.
fn check_writable(dir: &Path) -> Result<()> {
    if !dir.is_dir() {
        bail!(
            "{}: the output directory does not exist (or is not a directory)",
            dir.display()
        );
    }
    StagedFile::new(&dir.join(".cae-write-check"), b"")
        .map(drop)
        .with_context(|| format!("{}: cannot write files in this directory", dir.display()))
}

/// Writes every file, or none: all are staged (written and fsynced under temporary names) before
/// the first is renamed into place. `create` is made first if missing, and removed again if
/// nothing could be written.
pub fn write_all(files: &[(PathBuf, Vec<u8>)], create: Option<&Path>) -> Result<()> {
    let created = match create {
        Some(dir) if !dir.exists() => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the output directory {}", dir.display()))?;
            Some(dir)
        }
        _ => None,
    };
    let staged: Result<Vec<StagedFile>> = files
        .iter()
        .map(|(path, bytes)| {
            StagedFile::new(path, bytes)
                .with_context(|| format!("cannot write {}; nothing was written", path.display()))
        })
        .collect();
    let staged = match staged {
        Ok(staged) => staged,
        Err(e) => {
            if let Some(dir) = created {
                let _ = std::fs::remove_dir(dir);
            }
            return Err(e);
        }
    };
    let total = staged.len();
    for (done, file) in staged.into_iter().enumerate() {
        let dest = file.dest().to_path_buf();
        file.commit().with_context(|| {
            format!(
                "cannot write {}; the {done} output(s) before it in the list were written, it and the {} after it were not",
                dest.display(),
                total - done - 1
            )
        })?;
    }
    Ok(())
}
