//! Helpers shared by the CLI's end-to-end tests: the binary, and a tiny IDX dataset written here.
#![allow(dead_code)] // each test binary uses its own part

use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_cae-cli");

pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the cae-cli binary runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

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
