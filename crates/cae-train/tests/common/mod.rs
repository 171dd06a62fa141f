//! Shared by the integration tests: small synthetic datasets.
#![allow(dead_code)]
use cae_data::Dataset;

/// Blurry strokes on 8×8 images, deterministic.
pub fn synthetic(n: usize, seed: u64) -> Dataset {
    let mut s = seed;
    let mut next = || {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (s >> 33) as usize
    };
    let mut images = vec![0u8; n * 64];
    let mut labels = vec![0u8; n];
    for i in 0..n {
        let class = next() % 4;
        labels[i] = class as u8;
        let offset = next() % 3;
        for k in 0..8 {
            let (r, c) = match class {
                0 => (k, 2 + offset),
                1 => (2 + offset, k),
                2 => (k, k),
                _ => (k, 7 - k),
            };
            images[i * 64 + r * 8 + c] = 200 + (next() % 56) as u8;
        }
    }
    Dataset::from_raw(images, labels, 8, 8).unwrap()
}
