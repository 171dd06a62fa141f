//! The one error type of this crate.
//!
//! Every variant names the file, directory or URL involved, says what was expected and what was
//! found, and (where there is one) what the user can do about it.

use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong while finding, downloading, verifying or parsing a dataset.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// A file or directory could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        // In the message rather than `source()`, so that error chains print it once.
        /// What the operating system said.
        error: std::io::Error,
    },

    /// The file starts like a gzip stream but does not decompress.
    #[error(
        "{path}: looks gzip-compressed but does not decompress ({source}); \
         the file is probably truncated or corrupt: delete it and try again"
    )]
    Decompress {
        /// The file or directory involved.
        path: PathBuf,
        #[source]
        /// What the decompressor said.
        source: std::io::Error,
    },

    /// The first bytes are not an IDX magic number (`00 00 <type> <rank>`).
    #[error(
        "{path}: not an IDX file: expected the magic bytes 00 00 08 <rank>, found {}",
        hex_bytes(found)
    )]
    BadMagic {
        /// The file.
        path: PathBuf,
        /// Its first bytes (up to four).
        found: Vec<u8>,
    },

    /// An IDX file whose element type is not unsigned bytes (type code 0x08).
    #[error("{path}: unsupported IDX element type 0x{found:02x}; only unsigned bytes (0x08) are supported")]
    UnsupportedType {
        /// The file.
        path: PathBuf,
        /// The type code found.
        found: u8,
    },

    /// An IDX file with the wrong number of dimensions for its role.
    #[error("{path}: expected an IDX file of rank {expected} ({role}), found rank {found}")]
    Rank {
        /// The file or directory involved.
        path: PathBuf,
        /// What the file was read as.
        role: &'static str,
        /// The rank that role needs.
        expected: u8,
        /// The type code found.
        found: u8,
    },

    /// A dimension that must be positive (image rows / columns) is zero, or the dimensions
    /// overflow.
    #[error("{path}: invalid dimensions {}: {reason}", dims_text(dims))]
    Dimensions {
        /// The file or directory involved.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<usize>,
        /// What is wrong with them.
        reason: &'static str,
    },

    /// The payload is shorter or longer than the header's dimensions say.
    #[error(
        "{path}: the header's dimensions {} call for {expected} bytes of data, found {found}; \
         the file is probably truncated or corrupt",
        dims_text(dims)
    )]
    Length {
        /// The file or directory involved.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<usize>,
        /// What the header or the other inputs call for.
        expected: usize,
        /// What was found.
        found: usize,
    },

    /// The data goes on past what the header's dimensions call for.
    #[error(
        "{path}: the header's dimensions {} call for {expected} bytes of data, but the file holds \
         more; it is corrupt or not an IDX file",
        dims_text(dims)
    )]
    TrailingData {
        /// The file or directory involved.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<usize>,
        /// What the header or the other inputs call for.
        expected: usize,
    },

    /// The header announces more data than any dataset this crate reads.
    #[error(
        "{path}: the header's dimensions {} describe {bytes} bytes, more than the {limit} an IDX \
         file may hold here; the header is probably corrupt",
        dims_text(dims)
    )]
    TooLarge {
        /// The file or directory involved.
        path: PathBuf,
        /// The dimensions from the header.
        dims: Vec<usize>,
        /// The bytes those dimensions describe.
        bytes: usize,
        /// The most accepted.
        limit: usize,
    },

    /// The image file and the label file of one split hold different numbers of samples.
    #[error(
        "{images} holds {n_images} images but {labels} holds {n_labels} labels; they must match"
    )]
    CountMismatch {
        /// The image file.
        images: PathBuf,
        /// The label file.
        labels: PathBuf,
        /// Samples in the image file.
        n_images: usize,
        /// Labels in the label file.
        n_labels: usize,
    },

    /// The decompressed contents of a file do not match the pinned SHA-256 sum.
    #[error(
        "{location}: SHA-256 of the decompressed contents is {found}, expected {expected}; \
         the file is corrupt or is not the expected dataset: delete it and try again"
    )]
    Checksum {
        /// A path or URL.
        location: String,
        /// The pinned sum.
        expected: String,
        /// The sum of what was read.
        found: String,
    },

    /// Files of a dataset are missing and downloading is disabled (or not possible for a
    /// directory dataset).
    #[error(
        "missing {}: looked in {}. {hint}",
        missing.join(", "),
        searched.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" and ")
    )]
    Missing {
        /// File names (without `.gz`) that were not found.
        missing: Vec<String>,
        /// Directories searched.
        searched: Vec<PathBuf>,
        /// What the user can do about it.
        hint: String,
    },

    /// Every mirror failed for one file.
    #[error(
        "could not download {file} from any mirror:\n{}\n\
         If this machine is offline, put these files (gzip-compressed or not) into {}: {}; \
         or set the data root (the CAE_DATA_DIR environment variable) to a directory holding them.",
        attempts.iter().map(|a| format!("  - {a}")).collect::<Vec<_>>().join("\n"),
        dir.display(),
        files.join(", ")
    )]
    Download {
        /// The file (with `.gz`) that could not be fetched.
        file: String,
        /// The cache directory the file was to be saved in.
        dir: PathBuf,
        /// All files of the split, for the offline hint.
        files: Vec<String>,
        /// One entry per attempt, in order.
        attempts: Vec<DownloadAttempt>,
    },

    /// No per-user cache directory on this platform and no override given.
    #[error(
        "no per-user cache directory on this system to store {dataset} in, and no data root \
         given (the CAE_DATA_DIR environment variable is not set either)"
    )]
    NoCacheDir {
        /// The dataset that was to be stored.
        dataset: String,
    },

    /// [`crate::Dataset::from_raw`] was given inconsistent buffers.
    #[error("invalid raw dataset: {what}: expected {expected}, found {found}")]
    InvalidRaw {
        /// Which quantity is inconsistent.
        what: &'static str,
        /// What the header or the other inputs call for.
        expected: usize,
        /// What was found.
        found: usize,
    },
}

/// One failed try to fetch one URL.
#[derive(Debug)]
pub struct DownloadAttempt {
    /// The URL tried.
    pub url: String,
    /// Why it failed.
    pub error: FetchError,
}

impl fmt::Display for DownloadAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.error)
    }
}

/// Why one attempt at one URL failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a non-success status (404 and the like).
    #[error("HTTP status {0}")]
    Status(u16),
    /// No connection, or the server stopped sending for longer than the timeout.
    #[error("timed out ({0})")]
    Timeout(String),
    /// Any other transport failure (DNS, refused connection, body cut short, TLS).
    #[error("{0}")]
    Transport(String),
    /// The body arrived but is not a valid gzip stream.
    #[error("corrupt gzip body: {0}")]
    Decompress(String),
    /// The body arrived but is not an IDX file of the expected kind.
    #[error("{0}")]
    Contents(String),
    /// The body arrived but its decompressed contents do not match the pinned sum.
    #[error("SHA-256 of the decompressed contents is {found}, expected {expected}")]
    Checksum {
        /// The pinned sum.
        expected: String,
        /// The sum of what arrived.
        found: String,
    },
}

/// `[60000, 28, 28]` as `60000 × 28 × 28`.
fn dims_text(dims: &[usize]) -> String {
    if dims.is_empty() {
        return "(unread)".to_string();
    }
    dims.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(" × ")
}

fn hex_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "an empty file".to_string();
    }
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
