//! `cargo xtask dist`: build `cae-cli` with the `dist` profile and package it, with the README,
//! licence and assets, as `target/dist/cae-<version>-<target>.tar.gz` plus a `.sha256` file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::fetch::sha256_of_file;

/// The binary being shipped.
pub const BINARY: &str = "cae-cli";

/// Builds the release binary and packages it; returns the archive's path.
pub fn dist(workspace_root: &Path) -> Result<PathBuf> {
    build_release_binary(workspace_root)?;
    let dist_dir = workspace_root.join("target").join("dist");
    let binary = dist_dir.join(format!("{BINARY}{}", std::env::consts::EXE_SUFFIX));
    // xtask inherits the workspace version, which is the version cae-cli ships with.
    let version = env!("CARGO_PKG_VERSION");
    let target = host_target_triple()?;
    package(workspace_root, &binary, &dist_dir, version, &target)
}

fn build_release_binary(workspace_root: &Path) -> Result<()> {
    // Use the cargo that runs us, so toolchain overrides (rustup, CI) are respected.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(workspace_root)
        .args(["build", "--profile", "dist", "-p", BINARY])
        .status()
        .with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("`cargo build --profile dist -p {BINARY}` failed ({status}); fix the build errors above and rerun `cargo xtask dist`");
    }
    Ok(())
}

/// The host triple from `rustc -vV`: what `cargo build` without `--target` produces.
fn host_target_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("cannot run `{} -vV`", rustc.to_string_lossy()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
        .context("`rustc -vV` printed no `host:` line; cannot name the archive")
}

/// Packs `binary`, `README.md`, `LICENSE` and everything under `assets/` (all relative to
/// `workspace_root`) into `<out_dir>/cae-<version>-<target>.tar.gz`, inside a top-level folder
/// of the same name, and writes `<archive>.sha256` next to it. Returns the archive's path.
///
/// Entries are sorted and carry fixed timestamps and permissions, so the same inputs give the
/// same checksum.
pub fn package(
    workspace_root: &Path,
    binary: &Path,
    out_dir: &Path,
    version: &str,
    target: &str,
) -> Result<PathBuf> {
    let stem = format!("cae-{version}-{target}");
    let binary_name = binary
        .file_name()
        .with_context(|| format!("{} is not a file path", binary.display()))?;
    if !binary.is_file() {
        bail!(
            "{} does not exist; build it first (`cargo build --profile dist -p {BINARY}`)",
            binary.display()
        );
    }

    let mut entries = vec![(binary.to_path_buf(), PathBuf::from(binary_name), 0o755)];
    for required in ["README.md", "LICENSE"] {
        let path = workspace_root.join(required);
        if !path.is_file() {
            bail!("{} is missing; every archive ships it", path.display());
        }
        entries.push((path, PathBuf::from(required), 0o644));
    }
    let assets = workspace_root.join("assets");
    if assets.is_dir() {
        for file in files_under(&assets)? {
            let relative = file.strip_prefix(workspace_root)?.to_path_buf();
            entries.push((file, relative, 0o644));
        }
    }

    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let archive = out_dir.join(format!("{stem}.tar.gz"));
    // Written beside the archive and renamed, so an interrupted run leaves no half archive.
    let temp = tempfile::Builder::new()
        .prefix(".dist-")
        .tempfile_in(out_dir)
        .with_context(|| format!("cannot create a temporary file in {}", out_dir.display()))?;
    {
        let encoder = GzEncoder::new(BufWriter::new(temp.as_file()), Compression::best());
        let mut tar = tar::Builder::new(encoder);
        for (source, name, mode) in &entries {
            append_file(&mut tar, source, &Path::new(&stem).join(name), *mode)?;
        }
        let mut buffered = tar.into_inner()?.finish()?;
        buffered.flush()?;
    }
    temp.as_file().sync_all()?;
    temp.persist(&archive)
        .with_context(|| format!("cannot write {}", archive.display()))?;

    let sum = sha256_of_file(&archive)?;
    let sum_file = PathBuf::from(format!("{}.sha256", archive.display()));
    // `sha256sum -c` format, so users can verify with standard tools.
    std::fs::write(&sum_file, format!("{sum}  {stem}.tar.gz\n"))
        .with_context(|| format!("cannot write {}", sum_file.display()))?;
    Ok(archive)
}

fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    source: &Path,
    name: &Path,
    mode: u32,
) -> Result<()> {
    let mut file =
        File::open(source).with_context(|| format!("cannot open {}", source.display()))?;
    let mut header = tar::Header::new_gnu();
    header.set_size(file.metadata()?.len());
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, &mut file)
        .with_context(|| format!("cannot add {} to the archive", source.display()))?;
    Ok(())
}

/// Every regular file under `dir`, recursively, in sorted order.
fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current)
            .with_context(|| format!("cannot list {}", current.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
    use std::io::Read;

    fn fake_workspace() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        let write = |relative: &str, contents: &[u8]| {
            let path = root.path().join(relative);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, contents).unwrap();
        };
        write("README.md", b"# cae\n");
        write("LICENSE", b"MIT OR Apache-2.0\n");
        write("assets/default-model.sha256", b"00  model.safetensors\n");
        write("assets/fonts/font.ttf", b"not really a font");
        write("target/dist/cae-cli", b"\x7fELF fake binary");
        root
    }

    fn entries(archive: &Path) -> Vec<(String, u32, Vec<u8>)> {
        let mut tar = tar::Archive::new(GzDecoder::new(File::open(archive).unwrap()));
        tar.entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().display().to_string();
                let mode = entry.header().mode().unwrap();
                let mut contents = Vec::new();
                entry.read_to_end(&mut contents).unwrap();
                (name, mode, contents)
            })
            .collect()
    }

    #[test]
    fn package_holds_binary_docs_and_assets_with_a_matching_sum() {
        let root = fake_workspace();
        let out = root.path().join("target/dist");
        let binary = out.join("cae-cli");
        let archive = package(
            root.path(),
            &binary,
            &out,
            "0.1.0",
            "x86_64-unknown-linux-gnu",
        )
        .unwrap();
        assert_eq!(
            archive,
            out.join("cae-0.1.0-x86_64-unknown-linux-gnu.tar.gz")
        );

        let listed = entries(&archive);
        let names: Vec<&str> = listed.iter().map(|(name, _, _)| name.as_str()).collect();
        let stem = "cae-0.1.0-x86_64-unknown-linux-gnu";
        assert_eq!(
            names,
            [
                format!("{stem}/cae-cli"),
                format!("{stem}/README.md"),
                format!("{stem}/LICENSE"),
                format!("{stem}/assets/default-model.sha256"),
                format!("{stem}/assets/fonts/font.ttf"),
            ]
        );
        assert_eq!(listed[0].1, 0o755, "the binary must be executable");
        assert_eq!(listed[0].2, b"\x7fELF fake binary");
        assert_eq!(listed[1].1, 0o644);

        let sum_line = std::fs::read_to_string(format!("{}.sha256", archive.display())).unwrap();
        let sum = sha256_of_file(&archive).unwrap();
        assert_eq!(sum_line, format!("{sum}  {stem}.tar.gz\n"));
        // No temporary files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.'))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn package_is_reproducible() {
        let root = fake_workspace();
        let out = root.path().join("target/dist");
        let binary = out.join("cae-cli");
        let first = package(root.path(), &binary, &out, "0.1.0", "t").unwrap();
        let first_sum = sha256_of_file(&first).unwrap();
        let second = package(root.path(), &binary, &out, "0.1.0", "t").unwrap();
        assert_eq!(first_sum, sha256_of_file(&second).unwrap());
    }

    #[test]
    fn package_without_binary_says_how_to_build_it() {
        let root = fake_workspace();
        let out = root.path().join("target/dist");
        let error = package(root.path(), &out.join("missing"), &out, "0.1.0", "t").unwrap_err();
        assert!(
            error.to_string().contains("cargo build --profile dist"),
            "{error}"
        );
    }
}
