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

    /// A path that is no kind of dataset this crate reads.
    #[error(
        "{path}: not a dataset: {reason}. Expected \"mnist\", \"fashion-mnist\", a directory of \
         IDX files (train-*/t10k-*), a directory of PNG/JPEG images (optionally one subdirectory \
         per class), a .npy file or a .csv file"
    )]
    UnknownSource {
        /// The path given.
        path: PathBuf,
        /// What it is instead.
        reason: String,
    },

    /// A source with one set of samples was asked for its test split.
    #[error(
        "{source_name} holds one set of samples, not a training and a test split: name a separate \
         test set or hold out a fraction of it"
    )]
    NoTestSplit {
        /// The source, as displayed.
        source_name: String,
    },

    /// An image that cannot be decoded (corrupt, truncated, unsupported, or over the limits).
    #[error("{path}: cannot decode the image: {detail}")]
    Image {
        /// The image file.
        path: PathBuf,
        /// What the decoder said.
        detail: String,
    },

    /// Images of different sizes and no size to resize them to.
    #[error(
        "{first} is {}×{} pixels but {other} is {}×{} (width × height); images of different \
         sizes need a size to be resized to",
        first_size.0, first_size.1, other_size.0, other_size.1
    )]
    MixedImageSizes {
        /// The first image, whose size all others must have.
        first: PathBuf,
        /// Its width and height.
        first_size: (u32, u32),
        /// An image of another size.
        other: PathBuf,
        /// Its width and height.
        other_size: (u32, u32),
    },

    /// A class subdirectory without images.
    #[error(
        "{dir}: an empty class folder: it holds no PNG or JPEG images; remove it or add images"
    )]
    EmptyClass {
        /// The class folder.
        dir: PathBuf,
    },

    /// Images directly in an image folder's root beside class subdirectories.
    #[error(
        "{dir}: holds both class subdirectories and images of no class (such as {image}); move \
         each image into its class folder"
    )]
    MixedLayout {
        /// The image folder.
        dir: PathBuf,
        /// One image outside any class folder.
        image: PathBuf,
    },

    /// More classes than labels of one byte can tell apart.
    #[error("{path}: {count} classes or more; at most 256 are supported")]
    TooManyClasses {
        /// The folder or file with the classes.
        path: PathBuf,
        /// How many there are.
        count: usize,
    },

    /// A `.npy` file whose header is malformed or describes data this crate does not read.
    #[error("{path}: {reason}; header: {header}")]
    NpyHeader {
        /// The `.npy` file.
        path: PathBuf,
        /// The header as read (or its first bytes).
        header: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A label that is not a class id in 0..=255.
    #[error(
        "{path}: the label of sample {index} is {value}; labels must be class ids from 0 to 255"
    )]
    BadLabel {
        /// The file holding the labels.
        path: PathBuf,
        /// The sample, counted from 0.
        index: usize,
        /// The value found.
        value: String,
    },

    /// A value that is NaN or infinite.
    #[error("{path}: sample {sample}, feature {feature} is {value}, not a finite number")]
    NonFinite {
        /// The file (or `<memory>`).
        path: PathBuf,
        /// The sample, counted from 0.
        sample: usize,
        /// The feature within the sample, counted from 0.
        feature: usize,
        /// The value found.
        value: f32,
    },

    /// A CSV cell that is not a finite number.
    #[error("{path}: line {line}, column {column}{}: {cell:?} {problem}",
        name.as_ref().map(|n| format!(" ({n})")).unwrap_or_default())]
    CsvCell {
        /// The CSV file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// The column, counted from 1.
        column: usize,
        /// The column's name from the header row, if there is one.
        name: Option<String>,
        /// The cell's text.
        cell: String,
        /// What is wrong with it.
        problem: &'static str,
    },

    /// A CSV row with another number of cells than the first.
    #[error("{path}: line {line} has {found} cells but the first row has {expected}")]
    CsvRagged {
        /// The CSV file.
        path: PathBuf,
        /// The line, counted from 1.
        line: usize,
        /// Cells in that line.
        found: usize,
        /// Cells in the first row.
        expected: usize,
    },

    /// A label column that is not in the CSV header.
    #[error("{path}: no column named {name:?}; {columns}")]
    CsvLabelColumn {
        /// The CSV file.
        path: PathBuf,
        /// The column asked for.
        name: String,
        /// The columns there are, or that there is no header row.
        columns: String,
    },

    /// A source that holds no samples.
    #[error("{path}: holds no samples")]
    NoSamples {
        /// The file or folder.
        path: PathBuf,
    },

    /// Data larger than the memory it may take.
    #[error(
        "{path}: the data takes {} MiB in memory, more than the {} MiB allowed ({budget_from}); \
         use a smaller dataset or raise the memory limit",
        bytes >> 20, budget >> 20
    )]
    OverMemoryBudget {
        /// The file or folder.
        path: PathBuf,
        /// The bytes the data would take.
        bytes: u64,
        /// The bytes it may take.
        budget: u64,
        /// Where the budget comes from (the configured limit, or the memory available).
        budget_from: &'static str,
    },

    /// A sample index past the end of the dataset.
    #[error("sample index {index} out of bounds for a dataset of {len} samples")]
    IndexOutOfBounds {
        /// The index asked for.
        index: usize,
        /// The number of samples.
        len: usize,
    },

    /// A test fraction that leaves no sample on one side.
    #[error(
        "a test fraction of {fraction} of {samples} samples leaves no sample for training or \
         none for testing; it must lie strictly between 0 and 1 and keep one sample on each side"
    )]
    BadTestFraction {
        /// The fraction asked for.
        fraction: f64,
        /// The samples to split.
        samples: usize,
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
