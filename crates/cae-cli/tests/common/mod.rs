//! Shared by the end-to-end tests: running the binary, and IDX datasets generated here.
#![allow(dead_code)]
use std::path::Path;
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_cae-cli");

pub fn cli(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the cae-cli binary runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

pub fn write_idx(path: &Path, magic: u32, dims: &[u32], data: &[u8]) {
    let mut bytes = magic.to_be_bytes().to_vec();
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

/// `n` images of `side`×`side`: class `c` is a noisy vertical bar at column `2 + 2c` (so the
/// classes are linearly separable), labels cycling through 0..10.
pub fn images(n: usize, side: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut pixels = vec![0u8; n * side * side];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let class = i % 10;
        labels.push(class as u8);
        let image = &mut pixels[i * side * side..(i + 1) * side * side];
        let col = (2 + 2 * class).min(side - 2);
        for row in side / 7..side - side / 7 {
            for dc in 0..2 {
                image[row * side + col + dc] = 180 + (next() % 76) as u8;
            }
        }
        for p in image.iter_mut() {
            if next() % 20 == 0 {
                *p = p.saturating_add((next() % 120) as u8);
            }
        }
    }
    (pixels, labels)
}

/// An MNIST-layout IDX directory with `train` and `test` images of `side`×`side`.
pub fn write_dataset(dir: &Path, side: usize, train: usize, test: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for (prefix, n, seed) in [("train", train, 1), ("t10k", test, 2)] {
        let (pixels, labels) = images(n, side, seed);
        let side = side as u32;
        write_idx(
            &dir.join(format!("{prefix}-images-idx3-ubyte")),
            0x0803,
            &[n as u32, side, side],
            &pixels,
        );
        write_idx(
            &dir.join(format!("{prefix}-labels-idx1-ubyte")),
            0x0801,
            &[n as u32],
            &labels,
        );
    }
}
