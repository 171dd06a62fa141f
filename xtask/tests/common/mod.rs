//! A tiny Hugging Face Hub look-alike served on 127.0.0.1 by the test that starts it, shared by
//! the tests of `fetch-weights` and `publish-weights`. Nothing leaves the machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use sha2::{Digest, Sha256};

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serves `files` (URL path → contents) the way the Hub's `resolve` endpoint does, as far as
/// hf-hub 0.4 relies on it: `x-repo-commit`, an `etag`, and `Range` requests answered with
/// `206` + `Content-Range` (hf-hub learns the size from a `bytes=0-0` probe). Returns the
/// endpoint URL. The thread lives until the test process exits.
pub fn serve(files: HashMap<String, Vec<u8>>) -> String {
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

/// Serves every file of `dir` (not recursive) as repository `repo` at revision `main`.
#[allow(dead_code)] // not every test binary that includes this module serves a directory
pub fn serve_dir(repo: &str, dir: &Path) -> String {
    let mut files = HashMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            files.insert(
                format!("/{repo}/resolve/main/{name}"),
                std::fs::read(&path).unwrap(),
            );
        }
    }
    serve(files)
}
