//! Every MNIST test digit, saved as an 8-bit PNG and run through `cae-cli encode` (cae-digit's
//! preprocessing, then the model), gets the code the dataset path gives it. Needs the full test
//! set in `CAE_TEST_MNIST_DIR`; without it the test prints SKIPPED and checks nothing.
use std::path::Path;
use std::process::Command;

use cae_data::{Dataset, Split};
use candle_core::{DType, Device};
use image::{GrayImage, ImageFormat};

use crate::helpers::{default_model, BIN};

/// Largest difference allowed between a code unit from a PNG and from the dataset.
const TOLERANCE: f32 = 1e-6;

/// The `[N, D]` float32 array of a `.npy` file written by `encode --format npy`.
fn read_npy(path: &Path) -> (Vec<f32>, usize) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
    let shape = header.split("'shape': (").nth(1).unwrap();
    let width: usize = shape
        .split(", ")
        .nth(1)
        .unwrap()
        .split(')')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let values = bytes[10 + header_len..]
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    (values, width)
}

#[test]
fn mnist_test_digits_as_png_encode_like_the_dataset() {
    let Some(dir) = std::env::var_os("CAE_TEST_MNIST_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("SKIPPED: set CAE_TEST_MNIST_DIR to the MNIST directory to run this test");
        return;
    };
    let test = Dataset::load_dir(Path::new(&dir), Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);

    // The dataset path: pixel / 255 straight into the model.
    let model = cae_core::read_model(&default_model(), &Device::Cpu)
        .and_then(|m| m.model(DType::F32, &Device::Cpu))
        .unwrap();
    let expected = model
        .encode(&test.to_tensor(0..test.len(), &Device::Cpu).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();

    // The user's path: one 8-bit greyscale PNG per digit, all encoded by one `cae-cli encode`.
    let work = tempfile::tempdir().unwrap();
    let pngs = work.path().join("digits");
    std::fs::create_dir(&pngs).unwrap();
    for i in 0..test.len() {
        GrayImage::from_raw(28, 28, test.image(i).to_vec())
            .unwrap()
            .save_with_format(pngs.join(format!("{i:05}.png")), ImageFormat::Png)
            .unwrap();
    }
    let codes = work.path().join("codes.npy");
    let out = Command::new(BIN)
        .args([
            "-q", "encode", "--format", "npy", "--device", "cpu", "--input",
        ])
        .arg(&pngs)
        .arg("--output")
        .arg(&codes)
        .arg("--weights")
        .arg(default_model())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (got, width) = read_npy(&codes);
    assert_eq!(got.len(), expected.len());

    let mut changed = Vec::new();
    let mut largest = 0.0f32;
    for (i, (a, b)) in got
        .chunks_exact(width)
        .zip(expected.chunks_exact(width))
        .enumerate()
    {
        let diff = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
        largest = largest.max(diff);
        if diff > TOLERANCE {
            changed.push(i);
        }
    }
    eprintln!(
        "{} of {} test digits differ by more than {TOLERANCE}; largest difference {largest}",
        changed.len(),
        test.len()
    );
    assert!(changed.is_empty(), "digits whose codes differ: {changed:?}");
}
