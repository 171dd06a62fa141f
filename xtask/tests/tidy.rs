//! The tidy test: the repository keeps its own rules (`xtask::tidy`), and each rule reports a
//! broken case in a small tree made here, so the test can fail.
use std::fs;
use std::path::Path;

use xtask::tidy::{self, Rule};

/// The whole repository, with no exceptions: a rule broken anywhere fails here.
#[test]
fn the_repository_keeps_its_rules() {
    let violations = tidy::check_all(&xtask::workspace_root()).unwrap();
    let report: String = violations.iter().map(|v| format!("  {v}\n")).collect();
    assert!(violations.is_empty(), "tidy violations:\n{report}");
}

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn manifest(name: &str, dependencies: &str) -> String {
    format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n\n{dependencies}")
}

#[test]
fn every_rule_reports_its_broken_case() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let header = "//! A module.\n";
    // Clean files: a header, short, unwraps in tests or under an invariant, a long file with a reason.
    write(
        root,
        "crates/cae-core/src/lib.rs",
        &format!(
            "{header}pub fn f(x: Option<u8>) -> u8 {{\n    // invariant: callers pass Some.\n    x.unwrap()\n}}\n\
             pub fn g(x: Option<u8>) -> u8 {{\n    x.unwrap_or(0) // .unwrap_or is fine\n}}\n\
             /// ```\n/// Some(1).unwrap();\n/// ```\npub fn h() {{}}\n\
             #[cfg(test)]\nmod tests {{\n    fn t() {{ Some(1).unwrap(); }}\n}}\n"
        ),
    );
    let long_ok = format!(
        "{header}//! tidy: long — a kernel and its reference, read side by side\n{}",
        "fn x() {}\n".repeat(700)
    );
    write(root, "crates/cae-core/src/kernel.rs", &long_ok);
    write(
        root,
        "crates/cae-core/Cargo.toml",
        &manifest("cae-core", "[dependencies]\ncandle-core.workspace = true\n\n[dev-dependencies]\ncae-data = { path = \"../cae-data\" }\n"),
    );
    write(
        root,
        "crates/cae-data/Cargo.toml",
        &manifest("cae-data", "[dependencies]\ncae-core.workspace = true\n"),
    );
    write(
        root,
        "xtask/src/main.rs",
        &format!("{header}fn main() {{}}\n"),
    );
    assert_eq!(tidy::check_all(root).unwrap(), Vec::new(), "the clean tree");

    // One broken case per rule.
    write(
        root,
        "crates/cae-data/src/lib.rs",
        "pub fn no_header() {}\n",
    );
    write(
        root,
        "crates/cae-digit/src/long.rs",
        &format!("{header}{}", "fn x() {}\n".repeat(601)),
    );
    write(
        root,
        "xtask/src/unwrap.rs",
        &format!("{header}pub fn f(x: Option<u8>) -> u8 {{\n    x.expect(\"some\")\n}}\n"),
    );
    write(
        root,
        "crates/cae-train/Cargo.toml",
        &manifest(
            "cae-train",
            "[dependencies]\ncae-core.workspace = true\n\n[target.'cfg(unix)'.dependencies]\ncae-cli = { path = \"../cae-cli\" }\n",
        ),
    );
    let found: Vec<(Rule, String, Option<usize>)> = tidy::check_all(root)
        .unwrap()
        .into_iter()
        .map(|v| (v.rule, v.path, v.line))
        .collect();
    assert_eq!(
        found,
        vec![
            (
                Rule::ModuleHeader,
                "crates/cae-data/src/lib.rs".into(),
                Some(1)
            ),
            (Rule::LongFile, "crates/cae-digit/src/long.rs".into(), None),
            (Rule::Unwrap, "xtask/src/unwrap.rs".into(), Some(3)),
            (
                Rule::DependencyDirection,
                "crates/cae-train/Cargo.toml".into(),
                Some(9)
            ),
        ]
    );
}
