//! The IDX file format (LeCun's MNIST format), unsigned-byte flavour, gzip-compressed or raw.
//!
//! An IDX file is a 4-byte magic number `00 00 <type> <rank>`, then `rank` big-endian `u32`
//! dimensions, then the elements in row-major order. MNIST uses type `0x08` (unsigned byte),
//! rank 3 for images (`n × rows × cols`) and rank 1 for labels (`n`). Nothing else is supported:
//! every other type code is reported as [`DataError::UnsupportedType`].

use std::io::{self, BufRead, BufReader, Read};
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

/// The most data bytes one IDX file may hold: far above any dataset of small images (MNIST's
/// training images are 47 MB, EMNIST's largest file 550 MB), far below what exhausts a machine. A
/// header asking for more is refused before anything is inflated.
pub const MAX_DATA_BYTES: usize = 1 << 30;

/// What an IDX file is read as; its rank is checked from the header, before the data is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Rank 3: count × rows × columns, rows and columns non-zero.
    Images,
    /// Rank 1: count.
    Labels,
    /// Any rank.
    Any,
}

/// Reads an IDX file (gzip-compressed or raw), checking its decompressed contents against
/// `sha256` when given.
///
/// The stream is inflated only as far as needed: the header is read and checked first (magic,
/// element type, rank for `role`, size at most [`MAX_DATA_BYTES`]), then exactly the data it
/// announces and one byte more to detect trailing data. A junk or hostile file fails after a few
/// bytes, whatever it would inflate to.
pub fn read_idx_file(path: &Path, role: Role, sha256: Option<&str>) -> Result<IdxArray, DataError> {
    let file = std::fs::File::open(path).map_err(|error| DataError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    read_idx_from(BufReader::new(file), path, role, sha256)
}

/// As [`read_idx_file`], from bytes in memory; `path` names them in errors.
pub fn read_idx_bytes(
    bytes: &[u8],
    path: &Path,
    role: Role,
    sha256: Option<&str>,
) -> Result<IdxArray, DataError> {
    read_idx_from(bytes, path, role, sha256)
}

/// Parses unsigned-byte IDX contents (raw or gzip-compressed). `path` is only used in errors.
pub fn parse_idx(bytes: Vec<u8>, path: &Path) -> Result<IdxArray, DataError> {
    read_idx_bytes(&bytes, path, Role::Any, None)
}

/// Reads and parses an IDX file, gzip-compressed or raw.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    read_idx_file(path, Role::Any, None)
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read_idx_from<R: BufRead>(
    mut input: R,
    path: &Path,
    role: Role,
    sha256: Option<&str>,
) -> Result<IdxArray, DataError> {
    let err_path = || path.to_path_buf();
    let head = input.fill_buf().map_err(|error| DataError::Io {
        path: err_path(),
        error,
    })?;
    let gzip = is_gzip(head);
    let read_error = |error: io::Error| {
        if gzip {
            DataError::Decompress {
                path: err_path(),
                source: error,
            }
        } else {
            DataError::Io {
                path: err_path(),
                error,
            }
        }
    };
    let inner: Box<dyn Read + '_> = if gzip {
        Box::new(MultiGzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let mut reader = Hashing {
        inner,
        hasher: Sha256::new(),
    };

    let mut magic = [0u8; 4];
    let got = read_full(&mut reader, &mut magic).map_err(read_error)?;
    if got < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(DataError::BadMagic {
            path: err_path(),
            found: magic[..got].to_vec(),
        });
    }
    if magic[2] != TYPE_U8 {
        return Err(DataError::UnsupportedType {
            path: err_path(),
            found: magic[2],
        });
    }
    let rank = magic[3];
    if let Some((expected, what)) = role.rank() {
        if rank != expected {
            return Err(DataError::Rank {
                path: err_path(),
                role: what,
                expected,
                found: rank,
            });
        }
    }
    let header_len = 4 + 4 * usize::from(rank);
    let mut dim_bytes = vec![0u8; header_len - 4];
    let got = read_full(&mut reader, &mut dim_bytes).map_err(read_error)?;
    if got < dim_bytes.len() {
        return Err(DataError::Length {
            path: err_path(),
            dims: Vec::new(),
            expected: header_len,
            found: 4 + got,
        });
    }
    let dims: Vec<usize> = dim_bytes
        .chunks_exact(4)
        // invariant: `chunks_exact(4)` yields 4-byte slices.
        .map(|c| u32::from_be_bytes(c.try_into().expect("4 bytes")) as usize)
        .collect();
    let Some(expected) = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)) else {
        return Err(DataError::Dimensions {
            path: err_path(),
            dims,
            reason: "their product overflows",
        });
    };
    if expected > MAX_DATA_BYTES {
        return Err(DataError::TooLarge {
            path: err_path(),
            dims,
            bytes: expected,
            limit: MAX_DATA_BYTES,
        });
    }
    if role == Role::Images && dims[1..].contains(&0) {
        return Err(DataError::Dimensions {
            path: err_path(),
            dims,
            reason: "images need at least one row and one column",
        });
    }

    // Grown as data arrives rather than reserved from the header, so a header that lies costs
    // only what the file really holds.
    let mut data = Vec::with_capacity(expected.min(1 << 26));
    (&mut reader)
        .take(expected as u64)
        .read_to_end(&mut data)
        .map_err(read_error)?;
    if data.len() < expected {
        return Err(DataError::Length {
            path: err_path(),
            dims,
            expected,
            found: data.len(),
        });
    }
    let mut one_more = [0u8; 1];
    if read_full(&mut reader, &mut one_more).map_err(read_error)? > 0 {
        return Err(DataError::TrailingData {
            path: err_path(),
            dims,
            expected,
        });
    }
    if let Some(expected) = sha256 {
        let found = hex::encode(reader.hasher.finalize());
        if !found.eq_ignore_ascii_case(expected) {
            return Err(DataError::Checksum {
                location: path.display().to_string(),
                expected: expected.to_string(),
                found,
            });
        }
    }
    Ok(IdxArray { dims, data })
}

impl Role {
    fn rank(self) -> Option<(u8, &'static str)> {
        match self {
            Role::Images => Some((3, "images: count × rows × columns")),
            Role::Labels => Some((1, "labels: count")),
            Role::Any => None,
        }
    }
}

/// A reader that hashes what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Fills `buf` as far as the stream goes; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
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

        assert_eq!(parse_idx(gzip(&bytes), &path()).unwrap(), parsed);
    }

    #[test]
    fn multi_member_gzip() {
        let bytes = encode_idx(&[3], &[1, 2, 3]).unwrap();
        let mut two = gzip(&bytes[..5]);
        two.extend(gzip(&bytes[5..]));
        assert_eq!(parse_idx(two, &path()).unwrap().data, [1, 2, 3]);
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
            matches!(err, DataError::TrailingData { expected: 24, .. }),
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
                parse_idx(gz[..cut].to_vec(), &path()).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn roles_are_checked_from_the_header_before_the_data() {
        // A rank-3 file read as labels, whose data is missing: the rank is what is wrong.
        let mut bytes = vec![0, 0, 8, 3];
        for d in [60_000u32, 28, 28] {
            bytes.extend_from_slice(&d.to_be_bytes());
        }
        let err = read_idx_bytes(&bytes, &path(), Role::Labels, None).unwrap_err();
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
        assert!(!err.to_string().contains("bytes"), "{err}");
        // More than the cap is refused from the header alone.
        let mut huge = vec![0, 0, 8, 3];
        for d in [u32::MAX, 1024, 1] {
            huge.extend_from_slice(&d.to_be_bytes());
        }
        let err = read_idx_bytes(&huge, &path(), Role::Images, None).unwrap_err();
        assert!(matches!(err, DataError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn junk_that_inflates_to_gigabytes_fails_after_a_few_bytes() {
        // 64 gzip members of 16 MiB of zeros each: 1 GiB once inflated, in a few hundred kB.
        let member = gzip(&vec![0u8; 16 << 20]);
        let junk: Vec<u8> = member
            .iter()
            .copied()
            .cycle()
            .take(member.len() * 64)
            .collect();
        let err = read_idx_bytes(&junk, &path(), Role::Images, None).unwrap_err();
        assert!(
            matches!(err, DataError::UnsupportedType { found: 0, .. }),
            "{err}"
        );
        // A valid header then junk: stops at the size the header announces.
        let mut header = encode_idx(&[1000, 28, 28], &[0; 784_000]).unwrap();
        header.extend_from_slice(&[0; 1000]);
        let err = parse_idx(gzip(&header), &path()).unwrap_err();
        assert!(matches!(err, DataError::TrailingData { .. }), "{err}");
    }

    #[test]
    fn checksum_is_of_the_decompressed_contents() {
        let bytes = encode_idx(&[3], &[1, 2, 3]).unwrap();
        let sum = sha256_hex(&bytes);
        assert!(read_idx_bytes(&gzip(&bytes), &path(), Role::Labels, Some(&sum)).is_ok());
        let err = read_idx_bytes(&gzip(&bytes), &path(), Role::Labels, Some(&"0".repeat(64)))
            .unwrap_err();
        assert!(matches!(err, DataError::Checksum { .. }), "{err}");
    }

    #[test]
    fn encode_rejects_inconsistent_input() {
        assert!(encode_idx(&[2, 2], &[0; 3]).is_none());
    }
}
