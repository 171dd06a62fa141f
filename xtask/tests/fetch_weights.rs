//! `fetch_weights` against a tiny Hugging Face Hub look-alike served on 127.0.0.1 by this test
//! ([`xtask::local_hub`]).
//! Nothing here leaves the machine: the endpoint is always the local server.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::Path;

use sha2::{Digest, Sha256};
use xtask::fetch::{fetch_weights, FetchArgs};
use xtask::local_hub::serve;

const REPO: &str = "tester/tiny-cae";
const FILE: &str = "model.safetensors";

/// Fake weights, large enough to take several reads.
fn weights() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn server_with_weights() -> (String, Vec<u8>) {
    let data = weights();
    let files = HashMap::from([(format!("/{REPO}/resolve/main/{FILE}"), data.clone())]);
    (serve(files).unwrap(), data)
}

fn args(endpoint: &str, dir: &Path, sha256: Option<String>) -> FetchArgs {
    FetchArgs {
        repo: REPO.to_owned(),
        file: FILE.to_owned(),
        sha256,
        dest: Some(dir.join("weights").join(FILE)),
        endpoint: Some(endpoint.to_owned()),
        hf_cache_dir: Some(dir.join("hf-cache")),
        ..FetchArgs::default()
    }
}

#[test]
fn download_installs_the_file_with_the_right_sum() {
    let (endpoint, data) = server_with_weights();
    let dir = tempfile::tempdir().unwrap();
    let sum = hex::encode(Sha256::digest(&data));
    let installed = fetch_weights(&args(&endpoint, dir.path(), Some(sum.to_uppercase()))).unwrap();
    assert_eq!(installed, dir.path().join("weights").join(FILE));
    assert_eq!(std::fs::read(&installed).unwrap(), data);
    // Only the weights in the destination folder: the temporary file was renamed, not left.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("weights"))
        .unwrap()
        .collect();
    assert_eq!(names.len(), 1);

    // Already installed with the right sum: succeeds again (without needing the download).
    assert_eq!(
        fetch_weights(&args(&endpoint, dir.path(), Some(sum))).unwrap(),
        installed
    );
}

#[test]
fn download_without_a_sum_is_installed_unverified() {
    let (endpoint, data) = server_with_weights();
    let dir = tempfile::tempdir().unwrap();
    let installed = fetch_weights(&args(&endpoint, dir.path(), None)).unwrap();
    assert_eq!(std::fs::read(installed).unwrap(), data);
}

#[test]
fn wrong_sum_fails_and_leaves_no_file() {
    let (endpoint, _) = server_with_weights();
    let dir = tempfile::tempdir().unwrap();
    let wrong = "0".repeat(64);
    let error = fetch_weights(&args(&endpoint, dir.path(), Some(wrong.clone()))).unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("SHA-256 mismatch"), "{message}");
    assert!(message.contains(&wrong), "{message}");
    let dest_dir = dir.path().join("weights");
    assert!(!dest_dir.join(FILE).exists());
    let leftovers: Vec<_> = std::fs::read_dir(&dest_dir).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "temporary files left behind: {leftovers:?}"
    );
}

#[test]
fn wrong_sum_keeps_the_previous_weights() {
    let (endpoint, _) = server_with_weights();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("weights").join(FILE);
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    std::fs::write(&dest, b"previous weights").unwrap();
    fetch_weights(&args(&endpoint, dir.path(), Some("1".repeat(64)))).unwrap_err();
    assert_eq!(std::fs::read(&dest).unwrap(), b"previous weights");
}

#[test]
fn missing_file_gives_a_clear_404_error() {
    let (endpoint, _) = server_with_weights();
    let dir = tempfile::tempdir().unwrap();
    let mut missing = args(&endpoint, dir.path(), None);
    missing.file = "nope.safetensors".to_owned();
    let message = format!("{:#}", fetch_weights(&missing).unwrap_err());
    assert!(message.contains("HTTP 404"), "{message}");
    assert!(
        message.contains(REPO) && message.contains("nope.safetensors"),
        "{message}"
    );
    assert!(
        message.contains(&format!("{endpoint}/{REPO}/resolve/main/nope.safetensors")),
        "{message}"
    );
    assert!(!dir.path().join("weights").join("nope.safetensors").exists());
}

#[test]
fn default_repository_404_says_no_weights_are_hosted_yet() {
    let endpoint = serve(HashMap::new()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let default = FetchArgs {
        dest: Some(dir.path().join(FILE)),
        endpoint: Some(endpoint),
        hf_cache_dir: Some(dir.path().join("hf-cache")),
        ..FetchArgs::default()
    };
    let message = format!("{:#}", fetch_weights(&default).unwrap_err());
    assert!(message.contains("No weights are hosted"), "{message}");
    assert!(message.contains("cae-cli -- train"), "{message}");
}

#[test]
fn unreachable_endpoint_says_so() {
    // Bind then drop a listener: the port is very likely closed now, and it is local.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let message = format!(
        "{:#}",
        fetch_weights(&args(&format!("http://127.0.0.1:{port}"), dir.path(), None)).unwrap_err()
    );
    assert!(message.contains("could not reach"), "{message}");
}

/// `cargo xtask fetch-weights ARGS` against `endpoint`, installing into `dir/weights` by
/// default (`CAE_WEIGHTS_DIR`) with hf-hub's cache in `dir/hf`.
fn fetch_command(endpoint: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("fetch-weights")
        .args(["--endpoint", endpoint])
        .args(args)
        .env(cae_data::WEIGHTS_DIR_ENV, dir.join("weights"))
        .env("HF_HOME", dir.join("hf"))
        .env_remove("HF_ENDPOINT")
        .output()
        .unwrap()
}

fn shipped_model() -> Vec<u8> {
    std::fs::read(xtask::workspace_root().join("assets/default-model.safetensors")).unwrap()
}

/// The default repository's file, served with `contents`.
fn default_repository_serving(contents: Vec<u8>) -> String {
    use xtask::fetch::{DEFAULT_FILE, DEFAULT_REPO};
    serve(HashMap::from([(
        format!("/{DEFAULT_REPO}/resolve/main/{DEFAULT_FILE}"),
        contents,
    )]))
    .unwrap()
}

fn names_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn default_weights_are_verified_by_their_pin_and_installed_where_cae_cli_looks() {
    let endpoint = default_repository_serving(shipped_model());
    let dir = tempfile::tempdir().unwrap();
    // No --sha256: the pin for cae-rs/cae-mnist/model.safetensors applies.
    let out = fetch_command(&endpoint, dir.path(), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let installed = dir.path().join("weights").join(FILE);
    assert_eq!(std::fs::read(&installed).unwrap(), shipped_model());
    assert!(
        stdout.contains(&installed.display().to_string()),
        "{stdout}"
    );
    assert!(
        stdout.contains("verified") && !stdout.contains("not verified"),
        "{stdout}"
    );
    assert!(stdout.contains("no --weights"), "{stdout}");
    assert_eq!(names_in(&dir.path().join("weights")), [FILE]);
    #[cfg(unix)]
    {
        // The mode any new file of the user's gets there (umask applied), not tempfile's 0600.
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fresh = dir.path().join("fresh");
        std::fs::write(&fresh, b"").unwrap();
        assert_eq!(mode(&installed), mode(&fresh));
        assert_ne!(
            mode(&installed) & 0o044,
            0,
            "the weights must be readable by others"
        );
    }
}

#[test]
fn tampered_default_weights_are_refused_and_nothing_is_installed() {
    let mut tampered = shipped_model();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let endpoint = default_repository_serving(tampered);
    let dir = tempfile::tempdir().unwrap();
    let out = fetch_command(&endpoint, dir.path(), &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("SHA-256 mismatch"), "{stderr}");
    assert!(names_in(&dir.path().join("weights")).is_empty());
}

#[test]
fn an_unpinned_file_needs_a_sum_or_an_explicit_no_verify() {
    let (endpoint, data) = server_with_weights();
    let dir = tempfile::tempdir().unwrap();
    let repo = ["--repo", REPO];
    let out = fetch_command(&endpoint, dir.path(), &repo);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("{REPO}/{FILE}"))
            && stderr.contains("--sha256")
            && stderr.contains("--no-verify"),
        "{stderr}"
    );
    assert!(names_in(&dir.path().join("weights")).is_empty());

    let sum = hex::encode(Sha256::digest(&data));
    let out = fetch_command(
        &endpoint,
        dir.path(),
        &[&repo[..], &["--sha256", &sum]].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(dir.path().join("weights").join(FILE)).unwrap();

    let out = fetch_command(
        &endpoint,
        dir.path(),
        &[&repo[..], &["--no-verify"]].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("not verified"));
    assert_eq!(
        std::fs::read(dir.path().join("weights").join(FILE)).unwrap(),
        data
    );
}
