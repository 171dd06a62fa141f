//! Fetching a named dataset's files from its public mirrors on a cache miss.
//!
//! A download goes to memory first, is decompressed and checked against the pinned SHA-256 of
//! the *decompressed* contents (distributors re-compress the `.gz` files, so their sums differ
//! from mirror to mirror while the IDX contents do not), and only then is written to a
//! temporary file in the cache directory and renamed into place. A failed, cut-short or corrupt
//! download therefore never leaves anything in the cache.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::error::{DataError, DownloadAttempt, FetchError};
use crate::idx;
use crate::spec::DatasetSpec;

/// How patient the downloader is, and whether it shows its progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Connect timeout, and the longest a server may stay silent mid-transfer.
    pub timeout: Duration,
    /// Extra tries per mirror after a timeout or transport error, before the next mirror.
    pub retries: u32,
    /// Draw a progress bar while downloading (only ever on a terminal).
    pub progress: bool,
}

impl Default for DownloadOptions {
    /// 30 s of silence, two retries per mirror, progress on a terminal.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            retries: 2,
            progress: true,
        }
    }
}

/// Downloads each of `files` (names without `.gz`) of `spec` into `dir`, trying the mirrors in
/// order, and returns the paths written. Files are verified against `spec`'s pinned sums
/// before they are moved into `dir`.
pub fn download_files(
    spec: &DatasetSpec,
    files: &[&str],
    dir: &Path,
    opts: &DownloadOptions,
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
    opts: &DownloadOptions,
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
        Some(total) => ProgressBar::new(total),
        None => ProgressBar::new_spinner(),
    };
    bar.with_style(bar_style(total.is_some()))
        .with_message(name)
}

/// A bar when the size is known, else a spinner.
fn bar_style(known_size: bool) -> ProgressStyle {
    if known_size {
        ProgressStyle::with_template(
            "{msg:30} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        // invariant: a constant template, which `progress_templates_are_valid` parses.
        .expect("valid template")
        .progress_chars("=> ")
    } else {
        ProgressStyle::with_template("{spinner} {msg:30} {bytes} {bytes_per_sec}")
            // invariant: a constant template, which `progress_templates_are_valid` parses.
            .expect("valid template")
    }
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
    fn progress_templates_are_valid() {
        // The `expect`s in `bar_style` rest on this.
        drop(bar_style(true));
        drop(bar_style(false));
    }

    #[test]
    fn url_joining() {
        assert_eq!(join_url("http://a/b/", "f.gz"), "http://a/b/f.gz");
        assert_eq!(join_url("http://a/b", "f.gz"), "http://a/b/f.gz");
    }
}
