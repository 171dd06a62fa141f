//! Hostile IDX files are refused in bounded memory: a 3 MB .gz of junk that would inflate to
//! 3 GB fails on its first bytes, and one with a valid header stops where the header says.
//!
//! Alone in its test binary, so that the process's peak memory (VmHWM) is this test's.
#![cfg(target_os = "linux")]

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use cae_data::{DataError, Dataset, Split};

const LIMIT_BYTES: u64 = 100 << 20;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// Peak resident memory of this process so far, in bytes.
fn peak_memory() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// `prefix` then zeros, as a multi-member gzip stream of about `size` bytes.
fn bomb(prefix: &[u8], size: usize) -> Vec<u8> {
    let member = gzip(&vec![0u8; 16 << 20]);
    let mut out = gzip(prefix);
    while out.len() < size {
        out.extend_from_slice(&member);
    }
    out
}

fn write_split(dir: &Path, images_gz: &[u8]) {
    std::fs::write(dir.join("train-images-idx3-ubyte.gz"), images_gz).unwrap();
    let labels = cae_data::idx::encode_idx(&[60_000], &vec![0; 60_000]).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte"), labels).unwrap();
}

#[test]
fn junk_gzip_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();

    // Pure junk: zeros where the magic number should be.
    let junk = bomb(&[], 3 << 20);
    assert!(junk.len() >= 3 << 20);
    write_split(dir.path(), &junk);
    drop(junk);
    let started = Instant::now();
    let err = Dataset::load_dir(dir.path(), Split::Train).unwrap_err();
    eprintln!("junk: refused in {:?}: {err}", started.elapsed());
    assert!(matches!(err, DataError::UnsupportedType { .. }), "{err}");

    // A valid MNIST-sized header, then gigabytes of zeros: inflation stops at 47 MB + 1 byte.
    let mut header = vec![0, 0, 8, 3];
    for d in [60_000u32, 28, 28] {
        header.extend_from_slice(&d.to_be_bytes());
    }
    let junk = bomb(&header, 3 << 20);
    write_split(dir.path(), &junk);
    drop(junk);
    let started = Instant::now();
    let err = Dataset::load_dir(dir.path(), Split::Train).unwrap_err();
    eprintln!("valid header: refused in {:?}: {err}", started.elapsed());
    assert!(matches!(err, DataError::TrailingData { .. }), "{err}");

    let peak = peak_memory();
    eprintln!("peak resident memory: {} MB", peak >> 20);
    assert!(peak < LIMIT_BYTES, "peak memory {} MB", peak >> 20);
}
