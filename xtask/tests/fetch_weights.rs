//! `fetch_weights` against a tiny Hugging Face Hub look-alike served on 127.0.0.1 by this test.
//! Nothing here leaves the machine: the endpoint is always the local server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use sha2::{Digest, Sha256};
use xtask::fetch::{fetch_weights, FetchArgs};

const REPO: &str = "tester/tiny-cae";
const FILE: &str = "model.safetensors";
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serves `files` (URL path → contents) the way the Hub's `resolve` endpoint does, as far as
/// hf-hub 0.4 relies on it: `x-repo-commit`, an `etag`, and `Range` requests answered with
/// `206` + `Content-Range` (hf-hub learns the size from a `bytes=0-0` probe). Returns the
/// endpoint URL. The thread lives until the test process exits.
fn serve(files: HashMap<String, Vec<u8>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = answer(stream, &files);
        }
    });
    endpoint
}

fn answer(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_owned());
            }
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));

    let Some(contents) = files.get(path) else {
        let body = b"Entry not found";
        write!(
            stream,
            "HTTP/1.1 404 Not Found\r\nx-error-code: EntryNotFound\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )?;
        return stream.write_all(body);
    };
    let etag = hex::encode(Sha256::digest(contents));
    let total = contents.len();
    let (status, start, end) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
        Some(spec) => {
            let (from, to) = spec.split_once('-').unwrap();
            let start: usize = from.parse().unwrap();
            let end = if to.is_empty() {
                total - 1
            } else {
                to.parse::<usize>().unwrap().min(total - 1)
            };
            ("206 Partial Content", start, end)
        }
        None => ("200 OK", 0, total - 1),
    };
    let body = &contents[start..=end];
    write!(
        stream,
        "HTTP/1.1 {status}\r\nx-repo-commit: {COMMIT}\r\netag: \"{etag}\"\r\n\
         Content-Range: bytes {start}-{end}/{total}\r\nContent-Length: {}\r\n\
         Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if method != "HEAD" {
        stream.write_all(body)?;
    }
    stream.flush()
}

/// Fake weights, large enough to take several reads.
fn weights() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect()
}

fn server_with_weights() -> (String, Vec<u8>) {
    let data = weights();
    let files = HashMap::from([(format!("/{REPO}/resolve/main/{FILE}"), data.clone())]);
    (serve(files), data)
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
    let endpoint = serve(HashMap::new());
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
