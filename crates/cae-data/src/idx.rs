//! The IDX file format (LeCun's MNIST format), unsigned-byte flavour, gzip-compressed or raw.
//!
//! An IDX file is a 4-byte magic number `00 00 <type> <rank>`, then `rank` big-endian `u32`
//! dimensions, then the elements in row-major order. MNIST uses type `0x08` (unsigned byte),
//! rank 3 for images (`n × rows × cols`) and rank 1 for labels (`n`). Nothing else is supported:
//! every other type code is reported as [`DataError::UnsupportedType`].

use std::io::Read;
use std::path::Path;

use flate2::read::MultiGzDecoder;
use sha2::{Digest, Sha256};

use crate::error::DataError;

/// The IDX type code for unsigned bytes.
const TYPE_U8: u8 = 0x08;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A parsed unsigned-byte IDX file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions from the header, outermost first.
    pub dims: Vec<usize>,
    /// `dims.iter().product()` bytes, row-major.
    pub data: Vec<u8>,
}

/// Whether `bytes` start with the gzip magic number.
///
/// We decide by content, not by file name: some servers transparently decompress `.gz` files
/// (`Content-Encoding: gzip`) and some users decompress them by hand without renaming.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads a whole file and, if it is gzip-compressed, decompresses it.
pub fn read_decompressed(path: &Path) -> Result<Vec<u8>, DataError> {
    let raw = std::fs::read(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    decompress_if_gzip(raw).map_err(|source| DataError::Decompress {
        path: path.to_path_buf(),
        source,
    })
}

/// Decompresses `raw` if it is a gzip stream (possibly multi-member), else returns it unchanged.
pub fn decompress_if_gzip(raw: Vec<u8>) -> std::io::Result<Vec<u8>> {
    if !is_gzip(&raw) {
        return Ok(raw);
    }
    // The gzip trailer stores the uncompressed size mod 2^32: a good capacity hint that saves
    // the repeated reallocations of a growing 47 MB buffer. Capped so a corrupt trailer cannot
    // make us allocate gigabytes up front.
    let hint = raw
        .len()
        .checked_sub(4)
        .map(|at| u32::from_le_bytes(raw[at..].try_into().expect("4 bytes")) as usize)
        .unwrap_or(0)
        .min(1 << 28);
    let mut out = Vec::with_capacity(hint);
    MultiGzDecoder::new(raw.as_slice()).read_to_end(&mut out)?;
    Ok(out)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses unsigned-byte IDX contents (already decompressed). `path` is only used in errors.
pub fn parse_idx(mut bytes: Vec<u8>, path: &Path) -> Result<IdxArray, DataError> {
    let err_path = || path.to_path_buf();
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::BadMagic {
            path: err_path(),
            found: bytes[..bytes.len().min(4)].to_vec(),
        });
    }
    if bytes[2] != TYPE_U8 {
        return Err(DataError::UnsupportedType {
            path: err_path(),
            found: bytes[2],
        });
    }
    let rank = bytes[3] as usize;
    let header_len = 4 + 4 * rank;
    if bytes.len() < header_len {
        return Err(DataError::Length {
            path: err_path(),
            dims: Vec::new(),
            expected: header_len,
            found: bytes.len(),
        });
    }
    let dims: Vec<usize> = bytes[4..header_len]
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let Some(expected) = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        return Err(DataError::Dimensions {
            path: err_path(),
            dims,
            reason: "their product overflows",
        });
    };
    let found = bytes.len() - header_len;
    if found != expected {
        return Err(DataError::Length {
            path: err_path(),
            dims,
            expected,
            found,
        });
    }
    bytes.drain(..header_len);
    Ok(IdxArray { dims, data: bytes })
}

/// Reads and parses an IDX file, gzip-compressed or raw.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    parse_idx(read_decompressed(path)?, path)
}

/// Checks that `array` is an image file: rank 3 with non-zero rows and columns.
/// Returns `(n, rows, cols)`.
pub fn check_images(array: &IdxArray, path: &Path) -> Result<(usize, usize, usize), DataError> {
    match array.dims[..] {
        [n, rows, cols] if rows > 0 && cols > 0 => Ok((n, rows, cols)),
        [_, _, _] => Err(DataError::Dimensions {
            path: path.to_path_buf(),
            dims: array.dims.clone(),
            reason: "images need at least one row and one column",
        }),
        _ => Err(DataError::Rank {
            path: path.to_path_buf(),
            role: "images: count × rows × columns",
            expected: 3,
            found: array.dims.len() as u8,
        }),
    }
}

/// Checks that `array` is a label file: rank 1. Returns the number of labels.
pub fn check_labels(array: &IdxArray, path: &Path) -> Result<usize, DataError> {
    match array.dims[..] {
        [n] => Ok(n),
        _ => Err(DataError::Rank {
            path: path.to_path_buf(),
            role: "labels: count",
            expected: 1,
            found: array.dims.len() as u8,
        }),
    }
}

/// Encodes `data` as an unsigned-byte IDX file with the given dimensions.
///
/// Useful to write test fixtures or to export a dataset. Returns `None` if `dims` has more than
/// 255 entries, a dimension does not fit in `u32`, or `data.len()` is not the product of `dims`.
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Option<Vec<u8>> {
    let rank = u8::try_from(dims.len()).ok()?;
    let n = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))?;
    if n != data.len() {
        return None;
    }
    let mut out = Vec::with_capacity(4 + 4 * dims.len() + data.len());
    out.extend_from_slice(&[0, 0, TYPE_U8, rank]);
    for &d in dims {
        out.extend_from_slice(&u32::try_from(d).ok()?.to_be_bytes());
    }
    out.extend_from_slice(data);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::PathBuf;

    fn path() -> PathBuf {
        PathBuf::from("fixture-idx3-ubyte")
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let data: Vec<u8> = (0..24).collect();
        let bytes = encode_idx(&[2, 3, 4], &data).unwrap();
        let parsed = parse_idx(bytes.clone(), &path()).unwrap();
        assert_eq!(parsed.dims, vec![2, 3, 4]);
        assert_eq!(parsed.data, data);
        assert_eq!(check_images(&parsed, &path()).unwrap(), (2, 3, 4));

        let unzipped = decompress_if_gzip(gzip(&bytes)).unwrap();
        assert_eq!(unzipped, bytes);
        // Raw input passes through untouched.
        assert_eq!(decompress_if_gzip(bytes.clone()).unwrap(), bytes);
    }

    #[test]
    fn multi_member_gzip() {
        let bytes = encode_idx(&[3], &[1, 2, 3]).unwrap();
        let mut two = gzip(&bytes[..5]);
        two.extend(gzip(&bytes[5..]));
        assert_eq!(decompress_if_gzip(two).unwrap(), bytes);
    }

    #[test]
    fn bad_magic() {
        let err = parse_idx(vec![0x50, 0x4b, 3, 4, 0], &path()).unwrap_err();
        assert!(
            matches!(err, DataError::BadMagic { ref found, .. } if found == &[0x50, 0x4b, 3, 4])
        );
        assert!(err.to_string().contains("fixture-idx3-ubyte"), "{err}");
        assert!(err.to_string().contains("50 4b 03 04"), "{err}");
        let err = parse_idx(vec![], &path()).unwrap_err();
        assert!(err.to_string().contains("empty file"), "{err}");
    }

    #[test]
    fn unsupported_type() {
        // 0x0d = float.
        let err = parse_idx(vec![0, 0, 0x0d, 1, 0, 0, 0, 0], &path()).unwrap_err();
        assert!(matches!(
            err,
            DataError::UnsupportedType { found: 0x0d, .. }
        ));
    }

    #[test]
    fn truncated_header_and_data() {
        let bytes = encode_idx(&[2, 3, 4], &[0; 24]).unwrap();
        let err = parse_idx(bytes[..10].to_vec(), &path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Length {
                    expected: 16,
                    found: 10,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse_idx(bytes[..30].to_vec(), &path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Length {
                    expected: 24,
                    found: 14,
                    ..
                }
            ),
            "{err}"
        );
        let mut long = bytes.clone();
        long.push(7);
        let err = parse_idx(long, &path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Length {
                    expected: 24,
                    found: 25,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("24 bytes"), "{err}");
    }

    #[test]
    fn overflowing_dims() {
        let mut bytes = vec![0, 0, 8, 4];
        for _ in 0..4 {
            bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        }
        let err = parse_idx(bytes, &path()).unwrap_err();
        assert!(matches!(err, DataError::Dimensions { .. }), "{err}");
    }

    #[test]
    fn rank_checks() {
        let labels = parse_idx(encode_idx(&[3], &[1, 2, 3]).unwrap(), &path()).unwrap();
        assert_eq!(check_labels(&labels, &path()).unwrap(), 3);
        let err = check_images(&labels, &path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Rank {
                    expected: 3,
                    found: 1,
                    ..
                }
            ),
            "{err}"
        );

        let images = parse_idx(encode_idx(&[1, 2, 2], &[0; 4]).unwrap(), &path()).unwrap();
        let err = check_labels(&images, &path()).unwrap_err();
        assert!(
            matches!(
                err,
                DataError::Rank {
                    expected: 1,
                    found: 3,
                    ..
                }
            ),
            "{err}"
        );

        let empty_rows = parse_idx(encode_idx(&[5, 0, 28], &[]).unwrap(), &path()).unwrap();
        let err = check_images(&empty_rows, &path()).unwrap_err();
        assert!(matches!(err, DataError::Dimensions { .. }), "{err}");
    }

    #[test]
    fn truncated_gzip_is_an_error_not_a_panic() {
        let bytes = encode_idx(&[100], &[9; 100]).unwrap();
        let gz = gzip(&bytes);
        for cut in [3, gz.len() / 2, gz.len() - 1] {
            assert!(
                decompress_if_gzip(gz[..cut].to_vec()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn encode_rejects_inconsistent_input() {
        assert!(encode_idx(&[2, 2], &[0; 3]).is_none());
    }
}
