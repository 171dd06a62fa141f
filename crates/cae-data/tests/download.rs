//! Finding, downloading, verifying and caching datasets, against an HTTP server on 127.0.0.1
//! started by each test. Nothing here reaches outside the machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cae_data::idx::{encode_idx, sha256_hex};
use cae_data::{DataError, Dataset, DatasetSource, DatasetSpec, FetchError, LoadOptions, Split};

// ---------------------------------------------------------------------------------------------
// Fixtures

const N: usize = 5;
const ROWS: usize = 3;
const COLS: usize = 2;

fn images_idx(seed: u8) -> Vec<u8> {
    let pixels: Vec<u8> = (0..N * ROWS * COLS)
        .map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed))
        .collect();
    encode_idx(&[N, ROWS, COLS], &pixels).unwrap()
}

fn labels_idx() -> Vec<u8> {
    encode_idx(&[N], &[3, 1, 4, 1, 5]).unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

const IMAGES: &str = "train-images-idx3-ubyte";
const LABELS: &str = "train-labels-idx1-ubyte";

fn spec(mirrors: Vec<String>) -> DatasetSpec {
    DatasetSpec {
        name: "tiny".to_string(),
        files: vec![
            (IMAGES.to_string(), sha256_hex(&images_idx(0))),
            (LABELS.to_string(), sha256_hex(&labels_idx())),
        ],
        mirrors,
    }
}

fn opts(root: &Path) -> LoadOptions {
    LoadOptions {
        cache_dir: Some(root.to_path_buf()),
        download: true,
        progress: false,
        timeout: Duration::from_secs(5),
        retries: 0,
        memory_limit: None,
    }
}

/// Every entry of `dir` (recursively), to check that failures leave nothing behind.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn download_attempts(err: &DataError) -> &[cae_data::DownloadAttempt] {
    match err {
        DataError::Download { attempts, .. } => attempts,
        other => panic!("expected a download error, got {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// A tiny HTTP/1.1 server with canned replies

#[derive(Clone)]
enum Reply {
    Body(Vec<u8>),
    Status(u16),
    /// Claims `claimed` bytes, sends `body`, then closes the connection.
    Truncated {
        body: Vec<u8>,
        claimed: usize,
    },
    /// Reads the request and never answers.
    Stall,
}

struct Server {
    base: String,
    hits: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Serves `routes` (path → reply); anything else is a 404.
    fn start(routes: Vec<(&str, Reply)>) -> Server {
        let routes: Arc<HashMap<String, Reply>> = Arc::new(
            routes
                .into_iter()
                .map(|(p, r)| (p.to_string(), r))
                .collect(),
        );
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let hits = Arc::new(Mutex::new(Vec::new()));
        let server_hits = hits.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let routes = routes.clone();
                let hits = server_hits.clone();
                // One thread per connection, so a stalled one does not block the next.
                std::thread::spawn(move || handle(stream, &routes, &hits));
            }
        });
        Server { base, hits }
    }

    fn url(&self, dir: &str) -> String {
        format!("{}/{dir}/", self.base)
    }

    fn hits(&self) -> Vec<String> {
        self.hits.lock().unwrap().clone()
    }
}

fn handle(mut stream: TcpStream, routes: &HashMap<String, Reply>, hits: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if line == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    hits.lock().unwrap().push(path.clone());
    let reply = routes.get(&path).cloned().unwrap_or(Reply::Status(404));
    let head = |status: &str, len: usize| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
    };
    let _ = match reply {
        Reply::Body(body) => stream
            .write_all(head("200 OK", body.len()).as_bytes())
            .and_then(|_| stream.write_all(&body)),
        Reply::Status(code) => stream.write_all(head(&format!("{code} Nope"), 0).as_bytes()),
        Reply::Truncated { body, claimed } => stream
            .write_all(head("200 OK", claimed).as_bytes())
            .and_then(|_| stream.write_all(&body)),
        Reply::Stall => {
            std::thread::sleep(Duration::from_secs(30));
            Ok(())
        }
    };
    let _ = stream.flush();
}

/// Routes serving the good fixtures (gzip-compressed) under `/<dir>/`.
fn good_routes(dir: &str) -> Vec<(String, Reply)> {
    vec![
        (
            format!("/{dir}/{IMAGES}.gz"),
            Reply::Body(gzip(&images_idx(0))),
        ),
        (
            format!("/{dir}/{LABELS}.gz"),
            Reply::Body(gzip(&labels_idx())),
        ),
    ]
}

fn start(routes: Vec<(String, Reply)>) -> Server {
    Server::start(
        routes
            .iter()
            .map(|(p, r)| (p.as_str(), r.clone()))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Downloads

#[test]
fn download_success_then_cached() {
    let server = start(good_routes("m1"));
    let root = tempfile::tempdir().unwrap();
    let spec = spec(vec![server.url("m1")]);

    let data = Dataset::load_spec(&spec, Split::Train, &opts(root.path())).unwrap();
    assert_eq!((data.len(), data.rows(), data.cols()), (N, ROWS, COLS));
    assert_eq!(data.labels(), &[3, 1, 4, 1, 5]);
    assert_eq!(data.images(), &images_idx(0)[16..]);

    let mut stored = files_under(root.path());
    stored.sort();
    let dir = root.path().join("tiny");
    assert_eq!(
        stored,
        [
            dir.join(format!("{IMAGES}.gz")),
            dir.join(format!("{LABELS}.gz"))
        ]
    );
    assert_eq!(server.hits().len(), 2);

    // Second load: from the cache, no request, even with downloads disabled.
    let offline = LoadOptions {
        download: false,
        ..opts(root.path())
    };
    assert_eq!(
        Dataset::load_spec(&spec, Split::Train, &offline).unwrap(),
        data
    );
    assert_eq!(server.hits().len(), 2);
}

#[test]
fn first_mirror_404_falls_back_to_second() {
    let server = start(good_routes("m2"));
    let root = tempfile::tempdir().unwrap();
    let spec = spec(vec![server.url("m1"), server.url("m2")]);
    let opts = LoadOptions {
        retries: 3, // a 404 must not be retried
        ..opts(root.path())
    };

    let data = Dataset::load_spec(&spec, Split::Train, &opts).unwrap();
    assert_eq!(data.len(), N);
    assert_eq!(
        server.hits(),
        [
            format!("/m1/{IMAGES}.gz"),
            format!("/m2/{IMAGES}.gz"),
            format!("/m1/{LABELS}.gz"),
            format!("/m2/{LABELS}.gz"),
        ]
    );
}

#[test]
fn corrupt_body_is_rejected_and_cache_left_clean() {
    // A well-formed IDX file with the wrong pixels: only the checksum can tell.
    let server = start(vec![
        (
            format!("/m1/{IMAGES}.gz"),
            Reply::Body(gzip(&images_idx(1))),
        ),
        (format!("/m1/{LABELS}.gz"), Reply::Body(gzip(&labels_idx()))),
        // Not gzip at all behind a 1f 8b prefix.
        (
            format!("/m2/{IMAGES}.gz"),
            Reply::Body(vec![0x1f, 0x8b, 8, 0, 1, 2, 3]),
        ),
    ]);
    let root = tempfile::tempdir().unwrap();
    let spec = spec(vec![server.url("m1"), server.url("m2")]);
    let err = Dataset::load_spec(&spec, Split::Train, &opts(root.path())).unwrap_err();

    let attempts = download_attempts(&err);
    assert_eq!(attempts.len(), 2, "{err}");
    match &attempts[0].error {
        FetchError::Checksum { expected, found } => {
            assert_eq!(expected, &sha256_hex(&images_idx(0)));
            assert_eq!(found, &sha256_hex(&images_idx(1)));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(
        matches!(attempts[1].error, FetchError::Decompress(_)),
        "{err}"
    );
    let message = err.to_string();
    assert!(message.contains(&format!("/m1/{IMAGES}.gz")), "{message}");
    assert_eq!(files_under(root.path()), Vec::<PathBuf>::new());
}

#[test]
fn truncated_body_is_rejected_and_retried() {
    let full = gzip(&images_idx(0));
    let server = start(vec![(
        format!("/m1/{IMAGES}.gz"),
        Reply::Truncated {
            body: full[..full.len() / 2].to_vec(),
            claimed: full.len(),
        },
    )]);
    let root = tempfile::tempdir().unwrap();
    let spec = spec(vec![server.url("m1")]);
    let opts = LoadOptions {
        retries: 1,
        ..opts(root.path())
    };
    let err = Dataset::load_spec(&spec, Split::Train, &opts).unwrap_err();

    let attempts = download_attempts(&err);
    assert_eq!(attempts.len(), 2, "one try plus one retry: {err}");
    for attempt in attempts {
        assert!(matches!(attempt.error, FetchError::Transport(_)), "{err}");
    }
    assert_eq!(files_under(root.path()), Vec::<PathBuf>::new());
}

#[test]
fn stalled_server_times_out() {
    let server = start(vec![(format!("/m1/{IMAGES}.gz"), Reply::Stall)]);
    let root = tempfile::tempdir().unwrap();
    let spec = spec(vec![server.url("m1")]);
    let opts = LoadOptions {
        timeout: Duration::from_secs(1),
        ..opts(root.path())
    };

    let start = Instant::now();
    let err = Dataset::load_spec(&spec, Split::Train, &opts).unwrap_err();
    let took = start.elapsed();
    let attempts = download_attempts(&err);
    assert_eq!(attempts.len(), 1, "{err}");
    assert!(matches!(attempts[0].error, FetchError::Timeout(_)), "{err}");
    assert!(
        took >= Duration::from_millis(900),
        "gave up too early: {took:?}"
    );
    assert!(
        took < Duration::from_secs(10),
        "timeout not applied: {took:?}"
    );
    assert_eq!(files_under(root.path()), Vec::<PathBuf>::new());
}

#[test]
fn server_side_decompression_is_accepted() {
    // A server may send the .gz with Content-Encoding stripped (i.e. the raw IDX bytes).
    let server = start(vec![
        (format!("/m1/{IMAGES}.gz"), Reply::Body(images_idx(0))),
        (format!("/m1/{LABELS}.gz"), Reply::Body(gzip(&labels_idx()))),
    ]);
    let root = tempfile::tempdir().unwrap();
    let data = Dataset::load_spec(
        &spec(vec![server.url("m1")]),
        Split::Train,
        &opts(root.path()),
    )
    .unwrap();
    assert_eq!(data.len(), N);
    // Stored under the name that says what it is.
    assert!(root.path().join("tiny").join(IMAGES).is_file());
}

#[test]
fn offline_error_says_where_to_put_the_files() {
    // A port with nothing listening: connection refused, as on a machine without network.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    let root = tempfile::tempdir().unwrap();
    let err =
        Dataset::load_spec(&spec(vec![closed]), Split::Train, &opts(root.path())).unwrap_err();
    let message = err.to_string();
    let dir = root.path().join("tiny");
    assert!(message.contains(&dir.display().to_string()), "{message}");
    assert!(message.contains(&format!("{IMAGES}.gz")), "{message}");
    assert!(message.contains(&format!("{LABELS}.gz")), "{message}");
    // Facts only: the command-line flag is the CLI's hint to add.
    assert!(!message.contains("--data-dir"), "{message}");
    assert!(message.contains("CAE_DATA_DIR"), "{message}");
    assert!(matches!(
        download_attempts(&err)[0].error,
        FetchError::Transport(_) | FetchError::Timeout(_)
    ));
}

#[test]
fn download_disabled_reports_missing_files() {
    let root = tempfile::tempdir().unwrap();
    let opts = LoadOptions {
        download: false,
        ..opts(root.path())
    };
    let err = Dataset::load_spec(&spec(vec![]), Split::Train, &opts).unwrap_err();
    assert!(matches!(err, DataError::Missing { ref missing, .. } if missing.len() == 2));
    let message = err.to_string();
    assert!(
        message.contains(&root.path().join("tiny").display().to_string()),
        "{message}"
    );
    assert!(message.contains(IMAGES), "{message}");
    assert!(!message.contains("--data-dir"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Finding files on disk

#[test]
fn files_directly_in_the_root_are_found_and_verified() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join(format!("{IMAGES}.gz")),
        gzip(&images_idx(0)),
    )
    .unwrap();
    std::fs::write(root.path().join(LABELS), labels_idx()).unwrap();
    let opts = LoadOptions {
        download: false,
        ..opts(root.path())
    };
    let data = Dataset::load_spec(&spec(vec![]), Split::Train, &opts).unwrap();
    assert_eq!(data.len(), N);

    // A file with the wrong contents is named in a checksum error.
    std::fs::write(root.path().join(LABELS), encode_idx(&[N], &[0; N]).unwrap()).unwrap();
    let err = Dataset::load_spec(&spec(vec![]), Split::Train, &opts).unwrap_err();
    match &err {
        DataError::Checksum { location, .. } => assert!(location.ends_with(LABELS), "{err}"),
        other => panic!("expected a checksum error, got {other}"),
    }
}

#[test]
fn directory_source_accepts_all_spellings() {
    let dir = tempfile::tempdir().unwrap();
    // Dotted spelling, raw; and the usual spelling, gzip-compressed.
    std::fs::write(dir.path().join("t10k-images.idx3-ubyte"), images_idx(9)).unwrap();
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte.gz"),
        gzip(&labels_idx()),
    )
    .unwrap();
    let source: DatasetSource = dir.path().to_str().unwrap().parse().unwrap();
    assert_eq!(source, DatasetSource::Dir(dir.path().to_path_buf()));

    let test = Dataset::load(&source, Split::Test, &LoadOptions::default()).unwrap();
    assert_eq!(test.len(), N);
    assert_eq!(test.images(), &images_idx(9)[16..]);

    // The train split is not there: a clear error naming the directory and the files.
    let err = Dataset::load(&source, Split::Train, &LoadOptions::default()).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("train-images-idx3-ubyte"), "{message}");
    assert!(
        message.contains(&dir.path().display().to_string()),
        "{message}"
    );
}

#[test]
fn directory_source_that_does_not_exist() {
    let source = DatasetSource::Dir(PathBuf::from("/definitely/not/here"));
    let err = Dataset::load(&source, Split::Train, &LoadOptions::default()).unwrap_err();
    // Not an IDX directory nor any other kind of dataset: the error says what it is.
    assert!(matches!(err, DataError::UnknownSource { .. }), "{err}");
    assert!(err.to_string().contains("/definitely/not/here"), "{err}");
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
}

#[test]
fn image_and_label_counts_must_match() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(IMAGES), images_idx(0)).unwrap();
    std::fs::write(dir.path().join(LABELS), encode_idx(&[4], &[0; 4]).unwrap()).unwrap();
    let err = Dataset::load_dir(dir.path(), Split::Train).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 5,
                n_labels: 4,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(IMAGES), "{err}");
}

#[test]
fn bad_files_are_typed_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(LABELS), labels_idx()).unwrap();
    let images = dir.path().join(IMAGES);

    type IsExpected = fn(&DataError) -> bool;
    let cases: Vec<(Vec<u8>, IsExpected)> = vec![
        (b"<html>404</html>".to_vec(), |e| {
            matches!(e, DataError::BadMagic { .. })
        }),
        // Labels where images belong: rank 1, not 3.
        (labels_idx(), |e| {
            matches!(
                e,
                DataError::Rank {
                    expected: 3,
                    found: 1,
                    ..
                }
            )
        }),
        (images_idx(0)[..40].to_vec(), |e| {
            matches!(e, DataError::Length { .. })
        }),
        (gzip(&images_idx(0))[..20].to_vec(), |e| {
            matches!(e, DataError::Decompress { .. })
        }),
    ];
    for (bytes, is_expected) in cases {
        std::fs::write(&images, &bytes).unwrap();
        let err = Dataset::load_dir(dir.path(), Split::Train).unwrap_err();
        assert!(is_expected(&err), "unexpected error: {err}");
        assert!(err.to_string().contains(IMAGES), "{err}");
    }
}
