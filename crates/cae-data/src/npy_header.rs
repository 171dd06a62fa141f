//! The header of a NumPy `.npy` file (format versions 1 to 3): the magic string, the version,
//! the header's length, and a Python dict literal naming the element type (`descr`), the order
//! (`fortran_order`) and the `shape`.

use std::io::Read;
use std::path::Path;

use crate::error::DataError;

const MAGIC: &[u8; 6] = b"\x93NUMPY";
/// Longer headers are refused (NumPy writes a few hundred bytes at most).
const MAX_HEADER: usize = 1 << 16;

/// The kind of number one element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `u1`, `u2`, `u4`, `u8`.
    Unsigned,
    /// `i1`, `i2`, `i4`, `i8`.
    Signed,
    /// `f4`, `f8`.
    Float,
}

/// A checked header: a little-endian (or one-byte) number type in C order.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) kind: Kind,
    /// Bytes per element.
    pub(crate) size: usize,
    pub(crate) shape: Vec<usize>,
    /// The dict as written, for error messages.
    pub(crate) text: String,
    /// Where the body starts.
    pub(crate) data_offset: u64,
}

impl Header {
    /// Reads and checks the header at the start of `reader`; `path` names the file in errors.
    pub(crate) fn read(reader: &mut impl Read, path: &Path) -> Result<Header, DataError> {
        let io = |error| DataError::Io {
            path: path.to_path_buf(),
            error,
        };
        let bad = |header: String, reason: &str| DataError::NpyHeader {
            path: path.to_path_buf(),
            header,
            reason: reason.to_string(),
        };
        let mut start = [0u8; 10];
        let got = read_up_to(reader, &mut start).map_err(io)?;
        if got < 10 || &start[..6] != MAGIC {
            return Err(bad(
                format!("{:?}", String::from_utf8_lossy(&start[..got])),
                "not a .npy file: it does not start with \\x93NUMPY",
            ));
        }
        let (len, prefix) = match start[6] {
            1 => (usize::from(u16::from_le_bytes([start[8], start[9]])), 10),
            2 | 3 => {
                let mut more = [0u8; 2];
                reader.read_exact(&mut more).map_err(io)?;
                let len = u32::from_le_bytes([start[8], start[9], more[0], more[1]]);
                (len as usize, 12)
            }
            v => {
                return Err(bad(
                    format!("version {v}.{}", start[7]),
                    "unsupported .npy format version",
                ))
            }
        };
        if len > MAX_HEADER {
            return Err(bad(format!("{len} bytes long"), "header too long"));
        }
        let mut raw = vec![0u8; len];
        reader
            .read_exact(&mut raw)
            .map_err(|_| bad(String::new(), "the header is cut short"))?;
        let text = String::from_utf8_lossy(&raw).trim_end().to_string();
        let dict = parse_dict(&text).ok_or_else(|| bad(text.clone(), "malformed header dict"))?;
        let field = |key: &str| dict.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let descr = match field("descr") {
            Some(Value::Str(d)) => d.clone(),
            _ => return Err(bad(text, "no element type ('descr')")),
        };
        match field("fortran_order") {
            Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                return Err(bad(
                    text,
                    "the array is in Fortran (column-major) order; save it in C order \
                     (numpy.ascontiguousarray)",
                ))
            }
            _ => return Err(bad(text, "no 'fortran_order'")),
        }
        let shape = match field("shape") {
            Some(Value::Tuple(s)) => s.clone(),
            _ => return Err(bad(text, "no 'shape'")),
        };
        let (kind, size) = match parse_descr(&descr) {
            Ok(ks) => ks,
            Err(reason) => return Err(bad(text, &reason)),
        };
        Ok(Header {
            kind,
            size,
            shape,
            text,
            data_offset: (prefix + len) as u64,
        })
    }

    /// The body's length in bytes, as the shape and type announce it.
    pub(crate) fn body_bytes(&self, path: &Path) -> Result<u64, DataError> {
        self.shape
            .iter()
            .try_fold(self.size as u64, |acc, &d| acc.checked_mul(d as u64))
            .filter(|&b| usize::try_from(b).is_ok())
            .ok_or_else(|| self.error(path, "the shape's size overflows"))
    }

    /// An error about this header.
    pub(crate) fn error(&self, path: &Path, reason: &str) -> DataError {
        DataError::NpyHeader {
            path: path.to_path_buf(),
            header: self.text.clone(),
            reason: reason.to_string(),
        }
    }
}

/// The header of a version-1 `.npy` file holding a C-order array of element type `descr`
/// (`"|u1"`, `"<f4"`, `"<f8"`, `"<i8"`, …) shaped `shape`: write it, then the elements
/// (little-endian), to make a file NumPy and this crate read.
pub fn encode_npy_header(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // NumPy pads the header with spaces to a multiple of 64 bytes, ending in a newline.
    while (10 + dict.len() + 1) % 64 != 0 {
        dict.push(' ');
    }
    dict.push('\n');
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// `<f4` → (Float, 4). Little-endian, or `|` for one byte.
fn parse_descr(descr: &str) -> Result<(Kind, usize), String> {
    let unsupported = || {
        format!("element type {descr:?} is not supported: use uint8, float32 or float64 (integers for labels)")
    };
    let mut chars = descr.chars();
    let order = chars.next().ok_or_else(unsupported)?;
    let kind = match chars.next() {
        Some('u') => Kind::Unsigned,
        Some('i') => Kind::Signed,
        Some('f') => Kind::Float,
        _ => return Err(unsupported()),
    };
    let size: usize = chars.as_str().parse().map_err(|_| unsupported())?;
    let ok_size = match kind {
        Kind::Float => matches!(size, 4 | 8),
        _ => matches!(size, 1 | 2 | 4 | 8),
    };
    if !ok_size {
        return Err(unsupported());
    }
    let little = match order {
        '<' => true,
        '|' => size == 1,
        '>' => size == 1,
        '=' => cfg!(target_endian = "little"),
        _ => return Err(unsupported()),
    };
    if !little {
        return Err(format!(
            "element type {descr:?} is big-endian; save the array little-endian (astype('<{}{size}'))",
            &descr[1..2]
        ));
    }
    Ok((kind, size))
}

/// A value in the header dict.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` → its entries. `None` when it
/// is not such a dict (a structured `descr`, a list, …).
fn parse_dict(text: &str) -> Option<Vec<(String, Value)>> {
    let mut rest = text.trim().strip_prefix('{')?.trim_start();
    let mut entries = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('}') {
            return after.trim().is_empty().then_some(entries);
        }
        let (key, after) = quoted(rest)?;
        rest = after.trim_start().strip_prefix(':')?.trim_start();
        let (value, after) = value(rest)?;
        entries.push((key, value));
        rest = after.trim_start();
        if let Some(after) = rest.strip_prefix(',') {
            rest = after.trim_start();
        } else if !rest.starts_with('}') {
            return None;
        }
    }
}

fn value(s: &str) -> Option<(Value, &str)> {
    if s.starts_with('\'') || s.starts_with('"') {
        let (v, rest) = quoted(s)?;
        return Some((Value::Str(v), rest));
    }
    if let Some(rest) = s.strip_prefix("True") {
        return Some((Value::Bool(true), rest));
    }
    if let Some(rest) = s.strip_prefix("False") {
        return Some((Value::Bool(false), rest));
    }
    let inner = s.strip_prefix('(')?;
    let close = inner.find(')')?;
    let dims = inner[..close]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    Some((Value::Tuple(dims), &inner[close + 1..]))
}

fn quoted(s: &str) -> Option<(String, &str)> {
    let quote = s.chars().next().filter(|&c| c == '\'' || c == '"')?;
    let body = &s[1..];
    let end = body.find(quote)?;
    Some((body[..end].to_string(), &body[end + 1..]))
}

fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dicts() {
        let d = parse_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }").unwrap();
        assert_eq!(d[0], ("descr".into(), Value::Str("<f4".into())));
        assert_eq!(d[1].1, Value::Bool(false));
        assert_eq!(d[2].1, Value::Tuple(vec![3, 4]));
        let d = parse_dict("{\"shape\": (5,), \"descr\": \"|u1\"}").unwrap();
        assert_eq!(d[0].1, Value::Tuple(vec![5]));
        assert!(parse_dict("{'descr': [('a', '<f4')], 'shape': (1,)}").is_none());
        assert!(parse_dict("{'shape': (1,)} junk").is_none());
        assert!(parse_dict("not a dict").is_none());
    }

    #[test]
    fn encoded_headers_read_back() {
        let bytes = encode_npy_header("<f4", &[60_000, 784]);
        assert_eq!(bytes.len() % 64, 0);
        let header = Header::read(&mut &bytes[..], Path::new("x.npy")).unwrap();
        assert_eq!((header.kind, header.size), (Kind::Float, 4));
        assert_eq!(header.shape, [60_000, 784]);
        assert_eq!(header.data_offset, bytes.len() as u64);
        let one = encode_npy_header("|u1", &[3]);
        let header = Header::read(&mut &one[..], Path::new("y.npy")).unwrap();
        assert_eq!(header.shape, [3]);
    }

    #[test]
    fn descrs() {
        assert_eq!(parse_descr("<f4"), Ok((Kind::Float, 4)));
        assert_eq!(parse_descr("<f8"), Ok((Kind::Float, 8)));
        assert_eq!(parse_descr("|u1"), Ok((Kind::Unsigned, 1)));
        assert_eq!(parse_descr("<i8"), Ok((Kind::Signed, 8)));
        assert!(parse_descr(">f4").unwrap_err().contains("big-endian"));
        assert!(parse_descr("<c8").unwrap_err().contains("not supported"));
        assert!(parse_descr("<f2").is_err());
        assert!(parse_descr("<U10").is_err());
    }
}
