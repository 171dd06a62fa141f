//! The codebase's own rules, checked over a source tree (as rust-analyzer's `xtask/src/tidy.rs`):
//! run by `xtask/tests/tidy.rs` on this repository, and on small broken trees to show each rule
//! can fail.
//!
//! The rules, over every `.rs` file under `crates/*/src` and `xtask/src`:
//! - [`Rule::ModuleHeader`]: the file's first non-blank line is a `//!` comment saying what the
//!   module is for.
//! - [`Rule::LongFile`]: at most [`MAX_LINES`] lines, unless the file's `//!` header has a line
//!   `//! tidy: long — <reason>` (see [`LONG_FILE_MARKER`]).
//! - [`Rule::Unwrap`]: no `.unwrap()` or `.expect(` outside tests (code from the first
//!   `#[cfg(test)]` on, comments and doc examples are tests or prose), unless the line or the
//!   comment lines right above it hold `// invariant: <why it cannot fail>` (see
//!   [`INVARIANT_MARKER`]).
//!
//! And over every `crates/*/Cargo.toml`: [`Rule::DependencyDirection`], the crate layers point one
//! way (see [`FORBIDDEN_DEPENDENCIES`]); dev-dependencies are not counted (tests may read data
//! through cae-data, drive the Hub look-alike in xtask, ...).
//!
//! Each check is a function of the tree's root returning its violations as data.
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The most lines a source file may have without a written reason.
pub const MAX_LINES: usize = 600;

/// Starts the `//!` line that lets a file be longer than [`MAX_LINES`]; a reason must follow it,
/// as in `//! tidy: long — one kernel and its reference, which read best side by side`.
pub const LONG_FILE_MARKER: &str = "tidy: long";

/// Starts the comment that documents why an `.unwrap()` or `.expect(` cannot fail, on its line or
/// in the comment lines right above it: `// invariant: <why>`.
pub const INVARIANT_MARKER: &str = "// invariant:";

/// For each crate of ours, the crates of ours it must never depend on.
pub const FORBIDDEN_DEPENDENCIES: &[(&str, &[&str])] = &[
    (
        "cae-core",
        &["cae-data", "cae-digit", "cae-train", "cae-cli", "xtask"],
    ),
    ("cae-data", &["cae-digit", "cae-train", "cae-cli", "xtask"]),
    ("cae-digit", &["cae-train", "cae-cli", "xtask"]),
    ("cae-train", &["cae-cli", "xtask"]),
    ("cae-cli", &["xtask"]),
];

// Spelled in pieces so that this file does not flag itself.
const UNWRAP: &str = concat!(".unwrap", "()");
const EXPECT: &str = concat!(".expect", "(");

/// Which rule a violation breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A source file without a `//!` header.
    ModuleHeader,
    /// A source file over [`MAX_LINES`] lines without a reason at its top.
    LongFile,
    /// An `.unwrap()` or `.expect(` outside tests without a documented invariant.
    Unwrap,
    /// A crate depending on a crate above it.
    DependencyDirection,
}

/// One broken rule, in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule broken.
    pub rule: Rule,
    /// The file, relative to the checked root, with `/` separators.
    pub path: String,
    /// The 1-based line, where the rule is about a line.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {:?}: {}", self.path, self.rule, self.message),
            None => write!(f, "{}: {:?}: {}", self.path, self.rule, self.message),
        }
    }
}

/// Every rule over the tree at `root`.
pub fn check_all(root: &Path) -> io::Result<Vec<Violation>> {
    let mut violations = Vec::new();
    for file in source_files(root)? {
        let text = fs::read_to_string(root.join(&file))?;
        violations.extend(check_header(&file, &text));
        violations.extend(check_length(&file, &text));
        violations.extend(check_unwraps(&file, &text));
    }
    violations.extend(check_dependencies(root)?);
    Ok(violations)
}

/// The `.rs` files under `crates/*/src` and `xtask/src`, relative to `root`, sorted.
pub fn source_files(root: &Path) -> io::Result<Vec<String>> {
    let mut dirs = vec![root.join("xtask/src")];
    for krate in subdirectories(&root.join("crates"))? {
        dirs.push(krate.join("src"));
    }
    let mut files = Vec::new();
    for dir in dirs {
        collect_rs(&dir, &mut files)?;
    }
    let mut relative: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(root).ok())
        .map(|f| f.to_string_lossy().replace('\\', "/"))
        .collect();
    relative.sort();
    Ok(relative)
}

fn subdirectories(dir: &Path) -> io::Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// [`Rule::ModuleHeader`] for one file (`path` as reported, `text` its contents).
pub fn check_header(path: &str, text: &str) -> Option<Violation> {
    let first = text.lines().find(|l| !l.trim().is_empty());
    if first.is_some_and(|l| l.starts_with("//!")) {
        return None;
    }
    Some(Violation {
        rule: Rule::ModuleHeader,
        path: path.to_string(),
        line: Some(1),
        message: "the file does not start with a `//!` comment saying what the module is for"
            .to_string(),
    })
}

/// [`Rule::LongFile`] for one file.
pub fn check_length(path: &str, text: &str) -> Option<Violation> {
    let lines = text.lines().count();
    if lines <= MAX_LINES {
        return None;
    }
    let reason = text
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| {
            l.trim_start_matches("//!")
                .trim()
                .strip_prefix(LONG_FILE_MARKER)
        })
        .any(|rest| rest.trim_start_matches([' ', ':', '—', '-']).trim().len() > 3);
    if reason {
        return None;
    }
    Some(Violation {
        rule: Rule::LongFile,
        path: path.to_string(),
        line: None,
        message: format!(
            "{lines} lines (over {MAX_LINES}) and no `//! {LONG_FILE_MARKER} — <reason>` in its header"
        ),
    })
}

/// [`Rule::Unwrap`] for one file: every offending line.
pub fn check_unwraps(path: &str, text: &str) -> Vec<Violation> {
    if path.ends_with("/tests.rs") || path.contains("/tests/") {
        return Vec::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        if code.starts_with("//") || !(code.contains(UNWRAP) || code.contains(EXPECT)) {
            continue;
        }
        if line.contains(INVARIANT_MARKER) || invariant_above(&lines[..i]) {
            continue;
        }
        out.push(Violation {
            rule: Rule::Unwrap,
            path: path.to_string(),
            line: Some(i + 1),
            message: format!(
                "`{}` outside tests without `{INVARIANT_MARKER} <why it cannot fail>`",
                code.trim_end()
            ),
        });
    }
    out
}

/// Whether the comment lines right above hold the invariant marker.
fn invariant_above(above: &[&str]) -> bool {
    above
        .iter()
        .rev()
        .map(|l| l.trim_start())
        .take_while(|l| l.starts_with("//"))
        .any(|l| l.starts_with(INVARIANT_MARKER))
}

/// [`Rule::DependencyDirection`] over every `crates/*/Cargo.toml` (and `xtask/Cargo.toml`).
pub fn check_dependencies(root: &Path) -> io::Result<Vec<Violation>> {
    let mut manifests = Vec::new();
    for krate in subdirectories(&root.join("crates"))? {
        manifests.push(krate.join("Cargo.toml"));
    }
    manifests.push(root.join("xtask/Cargo.toml"));
    let mut out = Vec::new();
    for manifest in manifests.into_iter().filter(|m| m.is_file()) {
        let text = fs::read_to_string(&manifest)?;
        let path = manifest
            .strip_prefix(root)
            .unwrap_or(&manifest)
            .to_string_lossy()
            .replace('\\', "/");
        let Some(package) = package_name(&text) else {
            continue;
        };
        let Some((_, forbidden)) = FORBIDDEN_DEPENDENCIES.iter().find(|(p, _)| *p == package)
        else {
            continue;
        };
        for (line, dependency) in dependencies(&text) {
            if forbidden.contains(&dependency.as_str()) {
                out.push(Violation {
                    rule: Rule::DependencyDirection,
                    path: path.clone(),
                    line: Some(line),
                    message: format!("{package} must not depend on {dependency}"),
                });
            }
        }
    }
    Ok(out)
}

/// `name = "..."` in the manifest's `[package]` table.
fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if in_package {
            if let Some(value) = line.strip_prefix("name") {
                let value = value.trim_start().strip_prefix('=')?.trim();
                return Some(value.trim_matches('"').to_string());
            }
        }
    }
    None
}

/// The (1-based line, name) of every normal and build dependency, target-specific ones included:
/// the keys of `[dependencies]`-like tables (`name = ...`, `name.workspace = true`) and the names
/// of `[dependencies.name]` tables. Dev-dependencies are not counted.
fn dependencies(manifest: &str) -> Vec<(usize, String)> {
    let is_dependency_table = |table: &str| {
        let last = table.rsplit('.').next().unwrap_or(table);
        last == "dependencies" || last == "build-dependencies"
    };
    let mut out = Vec::new();
    let mut in_table = false;
    for (i, line) in manifest.lines().enumerate() {
        let line = line.trim();
        if let Some(table) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_table = is_dependency_table(table);
            // `[dependencies.name]`: a table per dependency.
            if let Some((parent, name)) = table.rsplit_once('.') {
                if is_dependency_table(parent) && !name.contains('\'') {
                    out.push((i + 1, name.trim_matches('"').to_string()));
                }
            }
            continue;
        }
        if !in_table || line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split(['=', '.']).next().unwrap_or("").trim();
        if !key.is_empty() {
            out.push((i + 1, key.trim_matches('"').to_string()));
        }
    }
    out
}
