//! NumPy `.npy` arrays: `uint8`, `float32` and `float64` data (`float64` narrowed to `f32`),
//! C order, little-endian, shaped `N×D`, `N×H×W` or `N×H×W×C`; labels from an integer `.npy`.
//!
//! The header is read and checked first (type, order, shape, the file's length, the memory
//! budget), then the body is read straight into the dataset's buffer: `uint8` and `float32`
//! bodies in one read with no copy, `float64` through a small fixed buffer.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::memory::Budget;
use crate::npy_header::{Header, Kind};
use crate::shape::SampleShape;
use crate::storage::Storage;

/// A `.npy` array to read, and optionally its labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NpyFiles {
    /// The array: `N×D`, `N×H×W` or `N×H×W×C`, of `uint8`, `float32` or `float64`.
    pub data: PathBuf,
    /// An integer array of `N` class ids (0–255), shaped `N` or `N×1`.
    pub labels: Option<PathBuf>,
}

impl NpyFiles {
    /// The array at `data`, unlabelled.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            labels: None,
        }
    }
}

/// Reads the array at `data` (and the labels at `labels`, if given) into a dataset.
pub(crate) fn load(
    data: &Path,
    labels: Option<&Path>,
    budget: Option<Budget>,
) -> Result<Dataset, DataError> {
    let (header, mut reader) = open(data)?;
    let (n, shape) = sample_shape(&header, data)?;
    let count = n * shape.dim();
    let stored = match header.kind {
        Kind::Unsigned if header.size == 1 => count as u64,
        _ => 4 * count as u64,
    };
    Budget::check(budget, data, stored)?;
    let io = |error| DataError::Io {
        path: data.to_path_buf(),
        error,
    };
    let values = match (header.kind, header.size) {
        (Kind::Unsigned, 1) => {
            let mut v = vec![0u8; count];
            reader.read_exact(&mut v).map_err(io)?;
            Storage::U8(v)
        }
        (Kind::Float, 4) => {
            let mut v = vec![0f32; count];
            reader
                .read_exact(bytemuck::cast_slice_mut(&mut v))
                .map_err(io)?;
            if cfg!(target_endian = "big") {
                for x in &mut v {
                    *x = f32::from_bits(u32::from_le(x.to_bits()));
                }
            }
            Storage::F32(v)
        }
        (Kind::Float, 8) => Storage::F32(read_f64_as_f32(&mut reader, count).map_err(io)?),
        _ => {
            return Err(header.error(
                data,
                "the data must be uint8, float32 or float64 (integers of other widths are \
                 only read as labels)",
            ))
        }
    };
    let labels = labels.map(|path| load_labels(path, n, data)).transpose()?;
    Dataset::checked(values, shape, labels, data)
}

/// Opens `path` and reads its header, checking the body's length against it.
fn open(path: &Path) -> Result<(Header, BufReader<File>), DataError> {
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let file = File::open(path).map_err(io)?;
    let file_len = file.metadata().map_err(io)?.len();
    let mut reader = BufReader::new(file);
    let header = Header::read(&mut reader, path)?;
    let expected = header.body_bytes(path)?;
    let body = file_len.saturating_sub(header.data_offset);
    if body < expected {
        return Err(DataError::Length {
            path: path.to_path_buf(),
            dims: header.shape.clone(),
            expected: expected as usize,
            found: body as usize,
        });
    }
    if body > expected {
        return Err(DataError::TrailingData {
            path: path.to_path_buf(),
            dims: header.shape.clone(),
            expected: expected as usize,
        });
    }
    Ok((header, reader))
}

/// `(N, shape of one sample)` from `N×D`, `N×H×W` or `N×H×W×C`.
fn sample_shape(header: &Header, path: &Path) -> Result<(usize, SampleShape), DataError> {
    let shape = match header.shape[..] {
        [n, d] => (n, SampleShape::Features(d)),
        [n, h, w] => (n, SampleShape::grey(h, w)),
        [n, h, w, c] => (
            n,
            SampleShape::Image {
                height: h,
                width: w,
                channels: c,
            },
        ),
        _ => {
            return Err(header.error(
                path,
                "the data must have the shape N×D, N×H×W or N×H×W×C (N samples)",
            ))
        }
    };
    if header.shape[1..].contains(&0) {
        return Err(header.error(path, "a sample must hold at least one value"));
    }
    if shape.0 == 0 {
        return Err(DataError::NoSamples {
            path: path.to_path_buf(),
        });
    }
    Ok(shape)
}

/// Reads `count` little-endian `f64`s, narrowed to `f32`, through a 64 KiB buffer.
fn read_f64_as_f32(reader: &mut impl Read, count: usize) -> std::io::Result<Vec<f32>> {
    let mut out = Vec::with_capacity(count);
    let mut buf = vec![0u8; 8 * 8192];
    while out.len() < count {
        let take = (count - out.len()).min(8192);
        let bytes = &mut buf[..8 * take];
        reader.read_exact(bytes)?;
        out.extend(bytes.chunks_exact(8).map(|b| {
            let mut le = [0u8; 8];
            le.copy_from_slice(b);
            f64::from_le_bytes(le) as f32
        }));
    }
    Ok(out)
}

/// Reads an integer `.npy` of `n` labels (`N` or `N×1`), each a class id in 0..=255.
fn load_labels(path: &Path, n: usize, data: &Path) -> Result<Vec<u8>, DataError> {
    let (header, mut reader) = open(path)?;
    let count = match header.shape[..] {
        [m] | [m, 1] => m,
        _ => return Err(header.error(path, "labels must have the shape N or N×1")),
    };
    if !matches!(header.kind, Kind::Unsigned | Kind::Signed) {
        return Err(header.error(path, "labels must be integers"));
    }
    if count != n {
        return Err(DataError::CountMismatch {
            images: data.to_path_buf(),
            labels: path.to_path_buf(),
            n_images: n,
            n_labels: count,
        });
    }
    let mut bytes = vec![0u8; count * header.size];
    reader
        .read_exact(&mut bytes)
        .map_err(|error| DataError::Io {
            path: path.to_path_buf(),
            error,
        })?;
    let signed = header.kind == Kind::Signed;
    bytes
        .chunks_exact(header.size)
        .enumerate()
        .map(|(index, le)| {
            let value = integer_le(le, signed);
            u8::try_from(value).map_err(|_| DataError::BadLabel {
                path: path.to_path_buf(),
                index,
                value: value.to_string(),
            })
        })
        .collect()
}

/// A little-endian integer of 1 to 8 bytes.
fn integer_le(le: &[u8], signed: bool) -> i128 {
    let mut wide = [0u8; 16];
    wide[..le.len()].copy_from_slice(le);
    let negative = signed && le.last().is_some_and(|&b| b & 0x80 != 0);
    if negative {
        wide[le.len()..].fill(0xff);
    }
    i128::from_le_bytes(wide)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers() {
        assert_eq!(integer_le(&[0xff], false), 255);
        assert_eq!(integer_le(&[0xff], true), -1);
        assert_eq!(integer_le(&[0x00, 0x01], true), 256);
        assert_eq!(integer_le(&[0xfe, 0xff, 0xff, 0xff], true), -2);
        assert_eq!(integer_le(&[7, 0, 0, 0, 0, 0, 0, 0], true), 7);
    }

    #[test]
    fn f64_through_the_small_buffer() {
        let values: Vec<f64> = (0..20_000).map(|i| i as f64 * 0.5).collect();
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let out = read_f64_as_f32(&mut &bytes[..], values.len()).unwrap();
        assert_eq!(out.len(), 20_000);
        assert_eq!(out[19_999], 9999.5);
    }
}
