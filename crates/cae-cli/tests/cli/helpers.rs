//! Helpers shared by the CLI's end-to-end tests: the binary, and a tiny IDX dataset written here.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `cae-cli` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_cae-cli");

/// Runs the binary with `args`, with no fetched weights from this machine's user.
pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        // No fetched weights from this machine's user: without --weights, the built-in model.
        .env(cae_data::WEIGHTS_DIR_ENV, "/nonexistent/cae-test-weights")
        .output()
        .expect("the cae-cli binary runs")
}

/// Standard output, lossily decoded.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard error, lossily decoded.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A temp path as `&str`, for argument lists.
pub fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

/// Writes a dataset directory of `train` and `test` 28×28 images (strokes whose position
/// depends on `seed`), as raw IDX files.
pub fn write_dataset(dir: &Path, train: usize, test: usize, seed: u64) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n, salt) in [("train", train, 0u64), ("t10k", test, 1)] {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ salt;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        let mut images = vec![0u8; n * 784];
        let mut labels = vec![0u8; n];
        for i in 0..n {
            let class = next() % 4;
            labels[i] = class as u8;
            let offset = 6 + next() % 12;
            for k in 4..24 {
                let (r, c) = match class {
                    0 => (k, offset),
                    1 => (offset, k),
                    2 => (k, k),
                    _ => (k, 27 - k),
                };
                images[i * 784 + r * 28 + c] = 180 + (next() % 76) as u8;
            }
        }
        let write = |name: String, dims: &[usize], data: &[u8]| {
            let bytes = cae_data::idx::encode_idx(dims, data).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        };
        write(format!("{prefix}-images-idx3-ubyte"), &[n, 28, 28], &images);
        write(format!("{prefix}-labels-idx1-ubyte"), &[n], &labels);
    }
}

/// The default model file shipped in `assets/`.
pub fn default_model() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/default-model.safetensors")
}

/// The names in `dir`, sorted.
pub fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `metrics.jsonl` without the wall-clock fields, which no two runs share.
pub fn deterministic_metrics(run: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let o = v.as_object_mut().unwrap();
            o.remove("seconds");
            o.remove("samples_per_second");
            v
        })
        .collect()
}
