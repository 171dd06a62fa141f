//! The libraries' messages state facts; command-line hints (flag names, `cae-cli` commands) are
//! the binary's to add. Scans the libraries' string literals for flags of this CLI.
use std::path::Path;

const FLAGS: [&str; 12] = [
    "--data-dir",
    "--dataset",
    "--lr",
    "--lambda",
    "--resume",
    "--out",
    "--weights",
    "--output",
    "--preset",
    "--epochs",
    "--offline",
    "cae-cli ",
];

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn library_messages_name_no_cli_flags() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut offenders = Vec::new();
    for lib in ["cae-core", "cae-data", "cae-train", "cae-digit"] {
        let mut files = Vec::new();
        rust_files(&crates.join(lib).join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for (n, literal) in string_literals(&text) {
                if let Some(flag) = FLAGS.iter().find(|f| literal.contains(*f)) {
                    offenders.push(format!("{}:{n}: {flag}: {literal}", file.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{}", offenders.join("\n"));
}

/// The string literals of Rust source (multi-line ones included), with the line each starts on;
/// comment lines are skipped.
fn string_literals(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (n, line) in text.lines().enumerate() {
        if current.is_none() && line.trim_start().starts_with("//") {
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match (&mut current, c) {
                (Some((_, s)), '\\') => {
                    s.push(c);
                    if let Some(next) = chars.next() {
                        s.push(next);
                    }
                }
                (Some(_), '"') => found.push(current.take().unwrap()),
                (Some((_, s)), c) => s.push(c),
                (None, '\'') => {
                    // A char literal such as '"': skip it whole.
                    if chars.peek() == Some(&'"') {
                        chars.next();
                    }
                }
                (None, '"') => current = Some((n + 1, String::new())),
                (None, '/') if chars.peek() == Some(&'/') => break,
                (None, _) => {}
            }
        }
        if let Some((_, s)) = &mut current {
            s.push('\n');
        }
    }
    found
}
