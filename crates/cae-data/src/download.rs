//! Where datasets live on disk, and fetching them from public mirrors on a cache miss.
//!
//! A download goes to memory first, is decompressed and checked against the pinned SHA-256 of
//! the *decompressed* contents (distributors re-compress the `.gz` files, so their sums differ
//! from mirror to mirror while the IDX contents do not), and only then is written to a
//! temporary file in the cache directory and renamed into place. A failed, cut-short or corrupt
//! download therefore never leaves anything in the cache.

use std::ffi::OsString;
use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::dataset::LoadOptions;
use crate::error::{DataError, DownloadAttempt, FetchError};
use crate::idx;

/// Environment variable that overrides the per-user data root.
pub const DATA_DIR_ENV: &str = "CAE_DATA_DIR";

/// A named dataset that can be downloaded: its files, their pinned sums and its mirrors.
///
/// The constructors [`DatasetSpec::mnist`] and [`DatasetSpec::fashion_mnist`] give the real
/// thing; tests build their own to point at a local server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetSpec {
    /// Short name, also the name of the dataset's subdirectory in the data root.
    pub name: String,
    /// `(file name without .gz, SHA-256 of the decompressed IDX file)`.
    pub files: Vec<(String, String)>,
    /// Base URLs tried in order; `<mirror><file name>.gz` is fetched.
    pub mirrors: Vec<String>,
}

// Sums of the decompressed files, from /work/shared/data/*/SHA256SUMS.idx (the same contents
// torchvision and the Fashion-MNIST repository pin, in compressed form).
const MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    (
        "train-labels-idx1-ubyte",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    (
        "t10k-images-idx3-ubyte",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
];

const FASHION_MNIST_FILES: [(&str, &str); 4] = [
    (
        "train-images-idx3-ubyte",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    (
        "train-labels-idx1-ubyte",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    (
        "t10k-images-idx3-ubyte",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    (
        "t10k-labels-idx1-ubyte",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
];

impl DatasetSpec {
    /// LeCun et al.'s handwritten digits.
    pub fn mnist() -> Self {
        Self::from_static(
            "mnist",
            &MNIST_FILES,
            &[
                // torchvision's first choice; yann.lecun.com often refuses or rate-limits.
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ],
        )
    }

    /// Zalando's Fashion-MNIST: same format and sizes as MNIST, ten kinds of clothing.
    pub fn fashion_mnist() -> Self {
        Self::from_static(
            "fashion-mnist",
            &FASHION_MNIST_FILES,
            &["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        )
    }

    fn from_static(name: &str, files: &[(&str, &str)], mirrors: &[&str]) -> Self {
        Self {
            name: name.to_string(),
            files: files
                .iter()
                .map(|&(f, s)| (f.to_string(), s.to_string()))
                .collect(),
            mirrors: mirrors.iter().map(|m| m.to_string()).collect(),
        }
    }

    /// The pinned SHA-256 of the decompressed `file` (name without `.gz`), if the spec has one.
    pub fn sha256(&self, file: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|(f, _)| f == file)
            .map(|(_, s)| s.as_str())
    }
}

/// The directory that holds one subdirectory per named dataset: `explicit` if given, else
/// `$CAE_DATA_DIR`, else `<per-user cache dir>/cae` (`~/.cache/cae` on Linux). `None` when
/// none of those exists.
pub fn data_root(explicit: Option<&Path>) -> Option<PathBuf> {
    resolve_data_root(
        explicit,
        std::env::var_os(DATA_DIR_ENV),
        dirs::cache_dir().map(|d| d.join("cae")),
    )
}

/// [`data_root`] with its inputs spelled out, so the precedence can be tested without touching
/// the process environment.
pub fn resolve_data_root(
    explicit: Option<&Path>,
    env: Option<OsString>,
    default: Option<PathBuf>,
) -> Option<PathBuf> {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| env.filter(|v| !v.is_empty()).map(PathBuf::from))
        .or(default)
}

/// Downloads each of `files` (names without `.gz`) of `spec` into `dir`, trying the mirrors in
/// order, and returns the paths written. Files are verified against `spec`'s pinned sums
/// before they are moved into `dir`.
pub fn download_files(
    spec: &DatasetSpec,
    files: &[&str],
    dir: &Path,
    opts: &LoadOptions,
) -> Result<Vec<PathBuf>, DataError> {
    std::fs::create_dir_all(dir).map_err(|error| DataError::Io {
        path: dir.to_path_buf(),
        error,
    })?;
    let agent = make_agent(opts.timeout);
    files
        .iter()
        .map(|file| download_one(&agent, spec, file, files, dir, opts))
        .collect()
}

fn make_agent(timeout: Duration) -> ureq::Agent {
    // Per-phase and per-read limits rather than one overall deadline: a 26 MB file on a slow
    // line may take minutes, but a server that goes silent for `timeout` is given up on.
    ureq::Agent::config_builder()
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("cae-data/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

fn download_one(
    agent: &ureq::Agent,
    spec: &DatasetSpec,
    file: &str,
    all_files: &[&str],
    dir: &Path,
    opts: &LoadOptions,
) -> Result<PathBuf, DataError> {
    let expected = spec.sha256(file);
    let mut attempts = Vec::new();
    for mirror in &spec.mirrors {
        let url = join_url(mirror, &format!("{file}.gz"));
        for attempt in 0..=opts.retries {
            if attempt > 0 {
                // Short, growing pauses: enough for a flaky connection to recover, short
                // enough that a user waiting on the first run does not notice.
                std::thread::sleep(Duration::from_millis(250 << attempt.min(4)));
            }
            tracing::info!(%url, attempt, "downloading");
            let error = match fetch_verified(agent, &url, expected, opts.progress) {
                Ok(body) => return store(dir, file, &body),
                Err(error) => error,
            };
            tracing::warn!(%url, %error, "download failed");
            let retry = is_transient(&error);
            attempts.push(DownloadAttempt {
                url: url.clone(),
                error,
            });
            if !retry {
                break;
            }
        }
    }
    Err(DataError::Download {
        file: format!("{file}.gz"),
        dir: dir.to_path_buf(),
        files: all_files.iter().map(|f| format!("{f}.gz")).collect(),
        attempts,
    })
}

/// Whether trying the same URL again may help. A 404 or a wrong checksum will not change on a
/// second try, so those move straight on to the next mirror.
fn is_transient(error: &FetchError) -> bool {
    match error {
        FetchError::Status(code) => *code >= 500 || *code == 429 || *code == 408,
        FetchError::Timeout(_) | FetchError::Transport(_) => true,
        FetchError::Decompress(_) | FetchError::Contents(_) | FetchError::Checksum { .. } => false,
    }
}

fn join_url(base: &str, file: &str) -> String {
    if base.ends_with('/') {
        format!("{base}{file}")
    } else {
        format!("{base}/{file}")
    }
}

/// Fetches `url` into memory and checks it. Returns the body as received (compressed or not).
fn fetch_verified(
    agent: &ureq::Agent,
    url: &str,
    expected_sha256: Option<&str>,
    progress: bool,
) -> Result<Vec<u8>, FetchError> {
    let response = agent.get(url).call().map_err(classify)?;
    let status = response.status().as_u16();
    if !(200..300).contains(&status) {
        return Err(FetchError::Status(status));
    }
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bar = progress_bar(progress, total, url);

    let mut reader = response.into_body().into_reader();
    let mut body = Vec::with_capacity(total.unwrap_or(0).min(1 << 28) as usize);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                bar.abandon();
                return Err(classify(ureq::Error::from(e)));
            }
        };
        body.extend_from_slice(&chunk[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    // ureq already fails on a body shorter than its Content-Length; this catches a server that
    // sends more, and keeps the check independent of the HTTP client.
    if let Some(total) = total {
        if body.len() as u64 != total {
            return Err(FetchError::Transport(format!(
                "body has {} bytes, Content-Length said {total}",
                body.len()
            )));
        }
    }

    if expected_sha256.is_some() {
        // Parsed as it is inflated, so a junk body fails on its first bytes.
        idx::read_idx_bytes(
            &body,
            Path::new("the body"),
            idx::Role::Any,
            expected_sha256,
        )
        .map_err(|e| match e {
            DataError::Checksum {
                expected, found, ..
            } => FetchError::Checksum { expected, found },
            DataError::Decompress { source, .. } => FetchError::Decompress(source.to_string()),
            other => FetchError::Contents(other.to_string()),
        })?;
    }
    Ok(body)
}

fn classify(error: ureq::Error) -> FetchError {
    match error {
        ureq::Error::StatusCode(code) => FetchError::Status(code),
        ureq::Error::Timeout(t) => FetchError::Timeout(t.to_string()),
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            FetchError::Timeout(e.to_string())
        }
        other => FetchError::Transport(other.to_string()),
    }
}

fn progress_bar(enabled: bool, total: Option<u64>, url: &str) -> ProgressBar {
    // Progress bars in CI logs or piped output are noise; draw only on a terminal.
    if !enabled || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let name = url.rsplit('/').next().unwrap_or(url).to_string();
    let bar = match total {
        Some(total) => ProgressBar::new(total).with_style(
            ProgressStyle::with_template(
                "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {msg:30} {bytes} {bytes_per_sec}")
                .expect("valid template"),
        ),
    };
    bar.with_message(name)
}

/// Writes a verified body into `dir` atomically, so that a crash half-way leaves at most a stray
/// temporary file, never a truncated data file.
fn store(dir: &Path, file: &str, body: &[u8]) -> Result<PathBuf, DataError> {
    // Keep the name honest: if the server decompressed on the fly, store the raw IDX name.
    let name = if idx::is_gzip(body) {
        format!("{file}.gz")
    } else {
        file.to_string()
    };
    let path = dir.join(name);
    cae_core::write_atomic(&path, body).map_err(|error| DataError::Io {
        path: path.clone(),
        error,
    })?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_root_precedence() {
        let explicit = PathBuf::from("/explicit");
        let default = Some(PathBuf::from("/home/u/.cache/cae"));
        let env = Some(OsString::from("/from-env"));
        assert_eq!(
            resolve_data_root(Some(&explicit), env.clone(), default.clone()),
            Some(explicit)
        );
        assert_eq!(
            resolve_data_root(None, env, default.clone()),
            Some(PathBuf::from("/from-env"))
        );
        // An empty variable is treated as unset, as shells make that easy to do by accident.
        assert_eq!(
            resolve_data_root(None, Some(OsString::new()), default.clone()),
            default
        );
        assert_eq!(resolve_data_root(None, None, None), None);
    }

    #[test]
    fn specs_are_complete() {
        for spec in [DatasetSpec::mnist(), DatasetSpec::fashion_mnist()] {
            assert_eq!(spec.files.len(), 4);
            assert!(!spec.mirrors.is_empty());
            for (_, sum) in &spec.files {
                assert_eq!(sum.len(), 64);
                assert!(sum.bytes().all(|b| b.is_ascii_hexdigit()));
            }
        }
        assert_eq!(
            DatasetSpec::mnist().mirrors[0],
            "https://ossci-datasets.s3.amazonaws.com/mnist/"
        );
        assert!(DatasetSpec::mnist()
            .sha256("train-images-idx3-ubyte")
            .is_some());
        assert!(DatasetSpec::mnist().sha256("nope").is_none());
    }

    #[test]
    fn url_joining() {
        assert_eq!(join_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(join_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
