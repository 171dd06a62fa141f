//! Every kind of source read through the one `Dataset` type: image folders, `.npy` arrays, CSV
//! tables, held-out test splits and telling the kinds apart. Fixtures are written inside each
//! test into a temporary directory: PNGs with the `image` crate, `.npy` bytes by hand, CSV text.

mod csv;
mod detect;
mod images;
mod npy;
mod split;

use std::path::Path;

use cae_data::{Dataset, LoadOptions};
use candle_core::Device;

/// Offline, quiet options.
fn opts() -> LoadOptions {
    LoadOptions {
        download: false,
        progress: false,
        ..LoadOptions::default()
    }
}

/// A `.npy` file: `descr`, C order, `shape`, then `body`.
fn npy(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let mut out = cae_data::encode_npy_header(descr, shape);
    out.extend_from_slice(body);
    out
}

/// A version-1 `.npy` file with the header dict written as given (unpadded), then `body`.
fn npy_with_dict(dict: &str, body: &[u8]) -> Vec<u8> {
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.extend_from_slice(body);
    out
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::write(path, bytes).unwrap();
}

/// All samples as one sequential `f32` batch, row by row.
fn batch_rows(data: &Dataset) -> Vec<Vec<f32>> {
    let batch = data
        .batches(data.len(), &Device::Cpu)
        .next()
        .unwrap()
        .unwrap();
    batch.images.to_vec2::<f32>().unwrap()
}

/// A shuffled epoch's batches, each row checked against the sample it says it is.
fn check_shuffled_batches(data: &Dataset) {
    for batch in cae_data::Batcher::new(2)
        .shuffle(5)
        .epoch(data, 1, &Device::Cpu)
    {
        let batch = batch.unwrap();
        let rows = batch.images.to_vec2::<f32>().unwrap();
        for (row, &i) in rows.iter().zip(&batch.indices) {
            assert_eq!(row, &data.sample_f32(i));
        }
    }
}

/// The error's message, checked to name `what`s.
fn message_names(err: &cae_data::DataError, what: &[&str]) -> String {
    let text = err.to_string();
    for w in what {
        assert!(text.contains(w), "{text:?} does not name {w:?}");
    }
    text
}
