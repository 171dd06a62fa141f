//! A tiny Hugging Face Hub look-alike on 127.0.0.1, for tests: the download code is tested
//! against a real HTTP server started inside the test (`fetch-weights`' tests, and cae-cli's
//! test of publish → fetch → use). It serves files from memory and nothing leaves the machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serves `files` (URL path → contents) the way the Hub's `resolve` endpoint does, as far as
/// hf-hub 0.4 relies on it: `x-repo-commit`, an `etag`, and `Range` requests answered with
/// `206` + `Content-Range` (hf-hub learns the size from a `bytes=0-0` probe). Returns the
/// endpoint URL. The thread lives until the test process exits.
pub fn serve(files: HashMap<String, Vec<u8>>) -> std::io::Result<String> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let endpoint = format!("http://{}", listener.local_addr()?);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let _ = answer(stream, &files);
        }
    });
    Ok(endpoint)
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
            let bad_range = || std::io::Error::new(ErrorKind::InvalidData, format!("range {spec}"));
            let (from, to) = spec.split_once('-').ok_or_else(bad_range)?;
            let start: usize = from.parse().map_err(|_| bad_range())?;
            let end = if to.is_empty() {
                total - 1
            } else {
                to.parse::<usize>().map_err(|_| bad_range())?.min(total - 1)
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

/// Serves every file of `dir` (not recursive) as repository `repo` at revision `main`.
pub fn serve_dir(repo: &str, dir: &Path) -> std::io::Result<String> {
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if let (true, Some(name)) = (path.is_file(), path.file_name()) {
            let name = name.to_string_lossy().into_owned();
            files.insert(
                format!("/{repo}/resolve/main/{name}"),
                std::fs::read(&path)?,
            );
        }
    }
    serve(files)
}
