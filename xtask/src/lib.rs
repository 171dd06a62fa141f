//! Project automation behind `cargo xtask` (the rust-analyzer xtask pattern): plain Rust instead
//! of shell scripts, so it runs the same on every platform with nothing but cargo installed.
//!
//! `main.rs` only parses arguments; each task is a function here so that tests can call it.

use std::path::{Path, PathBuf};

pub mod bench;
pub mod dist;
pub mod fetch;
pub mod local_hub;
pub mod model_card;
pub mod publish;
pub mod tidy;

/// The workspace root: xtask always lives one level below it.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        // invariant: the manifest directory is an absolute path to `<root>/xtask`.
        .expect("xtask's manifest directory has a parent")
        .to_path_buf()
}
