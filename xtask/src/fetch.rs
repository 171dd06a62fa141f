//! `cargo xtask fetch-weights`: download trained weights from a Hugging Face Hub repository
//! (or any server that speaks its `resolve` protocol) into the place `cae-cli` looks by default
//! ([`cae_data::installed_weights_path`]).
//!
//! hf-hub does the HTTP work and keeps its usual cache; this module checks the SHA-256 and then
//! installs the file atomically, so a failed or tampered download never replaces good weights.
//! The expected sum is the one given, else the one pinned for that repository's file in
//! [`PINNED_SUMS_FILE`] ([`expected_sha256`]); a file with neither is refused unless the caller
//! explicitly chose to install it unverified.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Repo, RepoType};
use sha2::{Digest, Sha256};

/// Repository the project intends to publish its MNIST weights to (not hosted yet).
pub const DEFAULT_REPO: &str = "cae-rs/cae-mnist";
/// Weights file name inside the repository.
pub const DEFAULT_FILE: &str = "model.safetensors";
/// Git revision (branch, tag or commit) of the repository.
pub const DEFAULT_REVISION: &str = "main";
/// The public Hub; `--endpoint` or `HF_ENDPOINT` point elsewhere (a mirror, a test server).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Workspace-relative file pinning the expected sums of published weights, one per file:
/// `<hex>  <repository>/<file>` (`sha256sum` style), e.g. `…  cae-rs/cae-mnist/model.safetensors`.
pub const PINNED_SUMS_FILE: &str = "assets/pinned-weights.sha256";

/// What to download and where to put it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchArgs {
    /// Hub repository id, `owner/name`.
    pub repo: String,
    /// Branch, tag or commit.
    pub revision: String,
    /// File inside the repository.
    pub file: String,
    /// Expected SHA-256 (64 hex digits); `None` skips verification (see [`expected_sha256`] for
    /// how a caller decides).
    pub sha256: Option<String>,
    /// Where to install the file; `None` means [`default_weights_path`].
    pub dest: Option<PathBuf>,
    /// Hub endpoint; `None` means `HF_ENDPOINT` if set, else [`DEFAULT_ENDPOINT`].
    pub endpoint: Option<String>,
    /// hf-hub's download cache; `None` means its default (`HF_HOME`, `~/.cache/huggingface`).
    pub hf_cache_dir: Option<PathBuf>,
    /// Show hf-hub's progress bar.
    pub progress: bool,
}

impl Default for FetchArgs {
    fn default() -> Self {
        Self {
            repo: DEFAULT_REPO.to_owned(),
            revision: DEFAULT_REVISION.to_owned(),
            file: DEFAULT_FILE.to_owned(),
            sha256: None,
            dest: None,
            endpoint: None,
            hf_cache_dir: None,
            progress: false,
        }
    }
}

/// `<weights dir>/<file>` ([`cae_data::weights_dir`]): for `model.safetensors`, the file
/// `cae-cli` uses when given no `--weights`.
pub fn default_weights_path(file: &str) -> Result<PathBuf> {
    let dir = cae_data::weights_dir().context(
        "cannot find this platform's data directory (is $HOME set?); pass --dest <PATH> instead",
    )?;
    Ok(dir.join(file))
}

/// Whether `path` is the file `cae-cli` uses when given no `--weights`.
pub fn is_cae_cli_default(path: &Path) -> bool {
    cae_data::installed_weights_path().is_some_and(|default| default == path)
}

/// The sum to verify `repo`'s `file` against: `given` (from `--sha256`) if any, else the one
/// pinned for `<repo>/<file>` in `sums_file`. `Ok(None)` (no verification) only when there is
/// neither and `no_verify` is set: an unpinned file is an error otherwise.
pub fn expected_sha256(
    sums_file: &Path,
    repo: &str,
    file: &str,
    given: Option<&str>,
    no_verify: bool,
) -> Result<Option<String>> {
    if let Some(sum) = given {
        return normalise_sha256(sum).map(Some);
    }
    let key = format!("{repo}/{file}");
    if let Some(pinned) = pinned_sha256(sums_file, &key)? {
        return Ok(Some(pinned));
    }
    if no_verify {
        return Ok(None);
    }
    bail!(
        "no SHA-256 is pinned for `{key}` in {}: pass the sum its publisher gives with --sha256 HEX \
         (a repository laid out by `cargo xtask publish-weights` has it in {file}.sha256), or \
         --no-verify to install the file unverified",
        sums_file.display()
    )
}

/// The sum pinned for `file` (a `<repository>/<file>` name in [`PINNED_SUMS_FILE`]) in a
/// `sha256sum`-style file (`<hex>  <name>` per line), if any.
///
/// A missing sums file is not an error: it only means nothing is pinned. A sum pinned for a
/// different file name is ignored, since it cannot describe the file being fetched.
pub fn pinned_sha256(sums_file: &Path, file: &str) -> Result<Option<String>> {
    let text = match std::fs::read_to_string(sums_file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", sums_file.display())),
    };
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut fields = line.split_whitespace();
        let (Some(sum), Some(name)) = (fields.next(), fields.next()) else {
            bail!(
                "{}:{}: expected `<sha256 hex>  <file name>`, found {line:?}",
                sums_file.display(),
                number + 1
            );
        };
        // `sha256sum` marks binary mode with a leading '*'.
        if name.trim_start_matches('*') == file {
            return normalise_sha256(sum)
                .map(Some)
                .with_context(|| format!("in {}:{}", sums_file.display(), number + 1));
        }
    }
    Ok(None)
}

/// Lower-case hex of a SHA-256, or an error saying what is wrong with it.
pub fn normalise_sha256(hex_sum: &str) -> Result<String> {
    let sum = hex_sum.trim().to_ascii_lowercase();
    if sum.len() != 64 || !sum.bytes().all(|b| b.is_ascii_hexdigit()) {
        bail!("{hex_sum:?} is not a SHA-256: expected 64 hexadecimal digits");
    }
    Ok(sum)
}

/// Downloads `args.file` and installs it at `args.dest` (or the default path), verified.
///
/// Returns the installed path. If the destination already holds a file with the expected sum,
/// nothing is downloaded. On a checksum mismatch nothing is written to the destination.
pub fn fetch_weights(args: &FetchArgs) -> Result<PathBuf> {
    let expected = args.sha256.as_deref().map(normalise_sha256).transpose()?;
    let dest = match &args.dest {
        Some(dest) => dest.clone(),
        None => default_weights_path(&args.file)?,
    };
    if let Some(expected) = &expected {
        if dest.is_file() && sha256_of_file(&dest)? == *expected {
            return Ok(dest);
        }
    }

    let endpoint = args
        .endpoint
        .clone()
        .or_else(|| std::env::var("HF_ENDPOINT").ok())
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned());
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let url = format!(
        "{endpoint}/{}/resolve/{}/{}",
        args.repo, args.revision, args.file
    );

    let mut builder = ApiBuilder::from_env()
        .with_endpoint(endpoint.clone())
        .with_progress(args.progress);
    if let Some(cache) = &args.hf_cache_dir {
        builder = builder.with_cache_dir(cache.clone());
    }
    let api = builder
        .build()
        .context("cannot set up the Hugging Face Hub client")?;
    let repo = api.repo(Repo::with_revision(
        args.repo.clone(),
        RepoType::Model,
        args.revision.clone(),
    ));
    let downloaded = repo
        .download(&args.file)
        .map_err(|e| explain_download_error(e, args, &endpoint, &url))?;

    install_verified(&downloaded, &dest, expected.as_deref())
        .with_context(|| format!("downloaded {url} but could not install it"))?;
    Ok(dest)
}

/// Turns hf-hub's error into one that says what was asked for and what to try next.
fn explain_download_error(
    error: ApiError,
    args: &FetchArgs,
    endpoint: &str,
    url: &str,
) -> anyhow::Error {
    let what = format!(
        "file `{}` of repository `{}` at revision `{}`",
        args.file, args.repo, args.revision
    );
    let detail = error.to_string();
    let hint = match (&error, http_status(&detail)) {
        // The Hub answers 401, not 404, for a repository that does not exist.
        (ApiError::RequestError(_), Some(status @ (401 | 404))) if args.repo == DEFAULT_REPO => {
            format!(
                "{endpoint} has no such file (HTTP {status}). No weights are hosted for the \
                 default repository yet: train a model with \
                 `cargo run --release -p cae-cli -- train`, or point \
                 --repo/--file/--revision/--endpoint at weights that exist"
            )
        }
        (ApiError::RequestError(_), Some(404)) => format!(
            "{endpoint} has no such file (HTTP 404); check --repo, --revision and --file \
             (repository ids look like `owner/name`)"
        ),
        (ApiError::RequestError(_), Some(401 | 403)) => format!(
            "{endpoint} refused access (HTTP 401/403): the repository does not exist (the Hub \
             answers 401 for that too), or it is private or gated: check --repo, or put an \
             access token in $HF_HOME/token (`huggingface-cli login`) and retry"
        ),
        (ApiError::RequestError(_), Some(status)) => {
            format!("{endpoint} answered HTTP {status}; retry later or use another --endpoint")
        }
        (ApiError::RequestError(_), None) => format!(
            "could not reach {endpoint}; check the network connection, or pass --endpoint \
             (or set HF_ENDPOINT) to use a mirror"
        ),
        (ApiError::MissingHeader(_) | ApiError::InvalidHeader(_), _) => {
            format!("{endpoint} did not answer like a Hugging Face Hub server; check --endpoint")
        }
        _ => "see the cause below".to_owned(),
    };
    anyhow::Error::new(error).context(format!("cannot download the {what} from {url}: {hint}"))
}

/// The HTTP status in a ureq 2 error message (`<url>: status code 404`). hf-hub does not
/// re-export ureq 2, so the message is the only way to tell a 404 from a dead network.
fn http_status(message: &str) -> Option<u16> {
    let (_, after) = message.rsplit_once("status code ")?;
    after.get(..3)?.parse().ok()
}

/// Copies `source` to `dest` through a temporary file in `dest`'s directory, checking the sum,
/// then renames it into place: readers see the old file or the complete new one, never a part.
fn install_verified(source: &Path, dest: &Path, expected: Option<&str>) -> Result<()> {
    let dir = match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut builder = tempfile::Builder::new();
    builder.prefix(".fetch-weights-").suffix(".tmp");
    // A temporary file is private (0600); the installed weights get the mode any file the user
    // creates gets (0666 less the umask), like a download saved by hand.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut temp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let mut input =
        File::open(source).with_context(|| format!("cannot open {}", source.display()))?;
    let actual = copy_hashing(&mut input, temp.as_file_mut())
        .with_context(|| format!("cannot write {}", temp.path().display()))?;
    if let Some(expected) = expected {
        if actual != expected {
            // `temp` is deleted when dropped, so nothing reaches `dest`.
            bail!(
                "SHA-256 mismatch: expected {expected}, got {actual}; {} was left untouched. \
                 Retry in case the download was damaged; if the weights were updated on purpose, \
                 pass the new sum with --sha256 (or update {PINNED_SUMS_FILE})",
                dest.display()
            );
        }
    }
    temp.as_file().sync_all()?;
    temp.persist(dest)
        .with_context(|| format!("cannot move the download into {}", dest.display()))?;
    Ok(())
}

fn copy_hashing(input: &mut impl Read, output: &mut impl Write) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = input.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        output.write_all(&buffer[..read])?;
    }
    output.flush()?;
    Ok(hex::encode(hasher.finalize()))
}

/// Lower-case hex SHA-256 of a file's contents.
pub fn sha256_of_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    copy_hashing(&mut file, &mut io::sink())
        .with_context(|| format!("cannot read {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUM: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn pinned_sum_is_found_for_its_file_only() {
        let dir = tempfile::tempdir().unwrap();
        let sums = dir.path().join("default-model.sha256");
        std::fs::write(
            &sums,
            format!("# pinned\n{}  model.safetensors\n", SUM.to_uppercase()),
        )
        .unwrap();
        assert_eq!(
            pinned_sha256(&sums, "model.safetensors")
                .unwrap()
                .as_deref(),
            Some(SUM)
        );
        assert_eq!(pinned_sha256(&sums, "other.safetensors").unwrap(), None);
        assert_eq!(
            pinned_sha256(&dir.path().join("missing"), "model.safetensors").unwrap(),
            None
        );
    }

    #[test]
    fn malformed_sums_are_rejected() {
        assert!(normalise_sha256("abc").is_err());
        assert!(normalise_sha256(&"g".repeat(64)).is_err());
        let dir = tempfile::tempdir().unwrap();
        let sums = dir.path().join("sums");
        std::fs::write(&sums, "justonefield\n").unwrap();
        assert!(pinned_sha256(&sums, "model.safetensors").is_err());
    }

    #[test]
    fn expected_sum_is_given_else_pinned_per_repository_file_else_refused() {
        let dir = tempfile::tempdir().unwrap();
        let sums = dir.path().join("pinned-weights.sha256");
        std::fs::write(&sums, format!("{SUM}  owner/repo/model.safetensors\n")).unwrap();
        let expected = |repo: &str, given: Option<&str>, no_verify: bool| {
            expected_sha256(&sums, repo, "model.safetensors", given, no_verify)
        };
        assert_eq!(
            expected("owner/repo", None, false).unwrap().as_deref(),
            Some(SUM)
        );
        let other = "1".repeat(64);
        assert_eq!(
            expected("owner/repo", Some(&other), false).unwrap(),
            Some(other.clone())
        );
        // The same file name in another repository is not pinned.
        let message = format!("{:#}", expected("someone/else", None, false).unwrap_err());
        assert!(
            message.contains("someone/else/model.safetensors")
                && message.contains("--sha256")
                && message.contains("--no-verify"),
            "{message}"
        );
        assert_eq!(expected("someone/else", None, true).unwrap(), None);
        assert_eq!(
            expected("owner/repo", None, true).unwrap().as_deref(),
            Some(SUM)
        );
        assert!(expected("owner/repo", Some("xyz"), false).is_err());
    }

    #[test]
    fn the_default_repository_is_pinned_to_the_shipped_model() {
        let root = crate::workspace_root();
        let pinned = pinned_sha256(
            &root.join(PINNED_SUMS_FILE),
            &format!("{DEFAULT_REPO}/{DEFAULT_FILE}"),
        )
        .unwrap();
        let shipped = sha256_of_file(&root.join("assets/default-model.safetensors")).unwrap();
        assert_eq!(pinned, Some(shipped.clone()));
        let recorded = pinned_sha256(
            &root.join("assets/default-model.sha256"),
            "default-model.safetensors",
        )
        .unwrap();
        assert_eq!(recorded, Some(shipped));
    }

    #[test]
    fn http_status_is_read_from_ureq_messages() {
        assert_eq!(http_status("http://x/y: status code 404"), Some(404));
        assert_eq!(http_status("request error: Connection refused"), None);
    }
}
