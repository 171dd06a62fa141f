//! `cargo xtask bench`'s memory measurement, through the binary: the measured command is the only
//! child of a fresh `xtask measure-rss` process, so its peak is the command's own.
#![cfg(target_os = "linux")]
use std::process::Command;

/// Peak RSS in KiB of a shell that holds a `bytes`-long string in memory.
fn peak_of_shell_holding(bytes: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("rss");
    let script = format!("x=$(head -c {bytes} /dev/zero | tr '\\0' a); test ${{#x}} -eq {bytes}");
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("measure-rss")
        .arg("--report")
        .arg(&report)
        .args(["--", "sh", "-c", &script])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_to_string(&report)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn peak_rss_follows_what_the_command_holds() {
    let big = peak_of_shell_holding(64 << 20);
    let small = peak_of_shell_holding(1 << 20);
    assert!(big >= 64 * 1024, "64 MiB held, peak {big} KiB");
    assert!(small < 32 * 1024, "1 MiB held, peak {small} KiB");
}

#[test]
fn measured_command_exit_code_is_passed_on() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("measure-rss")
        .arg("--report")
        .arg(dir.path().join("rss"))
        .args(["--", "sh", "-c", "exit 3"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
}

/// `cargo xtask bench` with `args`, run from `cwd`: its exit code and stderr.
fn bench_in(cwd: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .current_dir(cwd)
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn missing_mnist_dir_is_reported_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = bench_in(dir.path(), &["--no-torch", "--mnist-dir", "no/such/mnist"]);
    assert_ne!(code, Some(0));
    assert!(
        err.contains("no/such/mnist") && err.contains("--mnist-dir"),
        "{err}"
    );
    // A relative directory is found from the current directory (here it exists but lacks the
    // MNIST files, which is the next thing checked, still before any work).
    std::fs::create_dir_all(dir.path().join("data/mnist")).unwrap();
    let (code, err) = bench_in(dir.path(), &["--no-torch", "--mnist-dir", "data/mnist"]);
    assert_ne!(code, Some(0));
    let absolute = dir.path().canonicalize().unwrap().join("data/mnist");
    assert!(
        err.contains(&format!(
            "{} has no train-images-idx3-ubyte.gz",
            absolute.display()
        )),
        "{err}"
    );
}

#[test]
fn unknown_preset_is_rejected_with_the_known_ones() {
    let (code, err) = bench_in(std::path::Path::new("."), &["--preset", "wide"]);
    assert_eq!(code, Some(2), "{err}");
    for name in ["default", "conv", "deep"] {
        assert!(err.contains(name), "{err}");
    }
}
