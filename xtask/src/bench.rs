//! `cargo xtask bench`: training and inference speed of the default preset (784-1000-784 sigmoid,
//! untied), measured three ways in one run and set beside the PyTorch reference when it is
//! installed:
//!
//! 1. criterion (`cae-train/benches/perf.rs`, on MNIST images): one training step, one dense
//!    600×784×1000 matmul, the same product with the input's zeros skipped, and inference of the
//!    10,000 test images, from which the achieved GFLOP/s follow (a step does five such products:
//!    two forward, three backward; the two that involve the input skip its zeros, the other three
//!    are dense); beside them, the share of a step spent in those products, timed inside 50 steps;
//! 2. a real `cae-cli train` run on MNIST (release build): seconds per epoch, samples/s, test BCE
//!    and the peak resident memory of the process;
//! 3. the PyTorch reference (`../shared/peers/torch/`): the same training run, its inference and
//!    matmul micro-benchmarks, and its peak memory, so every figure gets a cae/PyTorch ratio.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;

/// Floating-point operations of one training step of 784-1000-784 on a 600-sample batch:
/// five `600×784×1000` matmuls, two flops per multiply-add.
pub const STEP_MATMUL_FLOPS: f64 = 5.0 * 2.0 * 600.0 * 784.0 * 1000.0;
/// Floating-point operations of one `600×784 @ 784×1000` matmul.
pub const MATMUL_FLOPS: f64 = 2.0 * 600.0 * 784.0 * 1000.0;
/// Images in the inference benchmark (the MNIST test set).
pub const INFER_IMAGES: f64 = 10_000.0;
/// Where `cae-train/benches/perf.rs` writes the share of a step spent in matrix products.
pub const PRODUCT_SHARE_FILE_ENV: &str = "CAE_BENCH_PRODUCT_SHARE_FILE";
/// The criterion group of `cae-train/benches/perf.rs`.
pub const CRITERION_GROUP: &str = "perf";

/// What `bench` measures and against what.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Epochs of the real training runs (the median epoch is reported).
    pub epochs: usize,
    /// A directory with the MNIST IDX `.gz` files (both programs read it).
    pub mnist_dir: PathBuf,
    /// Python with torch installed, or `None` to leave PyTorch out.
    pub torch_python: Option<PathBuf>,
    /// The PyTorch reference's directory (`cae.py`, `bench.py`).
    pub torch_dir: PathBuf,
    /// Threads PyTorch may use (cae uses every core, as candle and rayon do by default).
    pub threads: usize,
    /// Skip the criterion benchmarks (only the real runs).
    pub skip_criterion: bool,
}

/// One program's figures; `None` where that part was not run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    pub seconds_per_epoch: Option<f64>,
    pub samples_per_second: Option<f64>,
    pub test_bce: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub inference_images_per_second: Option<f64>,
    pub matmul_gflops: Option<f64>,
    /// Seconds of one training step (criterion median), cae only.
    pub step_seconds: Option<f64>,
    /// Share of a step spent in its five matrix products (three dense, two with the input's zeros
    /// skipped; operand packing included), timed inside the steps themselves.
    pub matmul_share: Option<f64>,
    /// The flops of a step's five products done densely, divided by the step's time (so skipping
    /// zeros raises it, as it raises the speed a user sees).
    pub step_gflops: Option<f64>,
}

/// The whole report, also written as JSON to `target/bench/report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub epochs: usize,
    pub cae: Figures,
    pub pytorch: Option<Figures>,
}

/// Runs everything `opts` asks for from the workspace at `root`.
pub fn bench(root: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    ensure!(opts.epochs > 0, "--epochs must be at least 1");
    for file in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"] {
        ensure!(
            opts.mnist_dir.join(file).is_file(),
            "{} has no {file}: pass --mnist-dir DIR with the MNIST IDX .gz files (`cae-cli train` downloads them into ~/.cache/cae/mnist)",
            opts.mnist_dir.display()
        );
    }
    let target = target_dir(root);
    let scratch = target.join("bench");
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;

    let mut cae = Figures::default();
    if !opts.skip_criterion {
        eprintln!("== criterion: cargo bench -p cae-train --bench perf");
        let share_file = scratch.join("product-share.json");
        if share_file.exists() {
            std::fs::remove_file(&share_file)
                .with_context(|| format!("cannot remove {}", share_file.display()))?;
        }
        run(Command::new(cargo())
            .current_dir(root)
            // cae-data's data root: MNIST files directly in it are found.
            .env("CAE_DATA_DIR", &opts.mnist_dir)
            .env(PRODUCT_SHARE_FILE_ENV, &share_file)
            .args([
                "bench",
                "-p",
                "cae-train",
                "--bench",
                "perf",
                "--",
                "--noplot",
            ]))?;
        let median = |name: &str| {
            criterion_median_seconds(&target.join("criterion").join(CRITERION_GROUP).join(name))
        };
        let step = median("train_step")?;
        let matmul = median("matmul_600x784x1000")?;
        let infer = median("infer_10k")?;
        cae.step_seconds = Some(step);
        cae.matmul_gflops = Some(MATMUL_FLOPS / matmul / 1e9);
        cae.matmul_share = Some(parse_product_share(
            &std::fs::read_to_string(&share_file)
                .with_context(|| format!("the perf bench wrote no {}", share_file.display()))?,
        )?);
        cae.step_gflops = Some(STEP_MATMUL_FLOPS / step / 1e9);
        cae.inference_images_per_second = Some(INFER_IMAGES / infer);
    }

    eprintln!("== cae-cli train, {} epochs (release build)", opts.epochs);
    run(Command::new(cargo())
        .current_dir(root)
        .args(["build", "--release", "-p", "cae-cli"]))?;
    let run_dir = scratch.join("cae-run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("cannot remove {}", run_dir.display()))?;
    }
    let mut train = Command::new(target.join("release").join(exe("cae-cli")));
    train
        .args(["train", "-q", "--epochs", &opts.epochs.to_string()])
        .arg("--dataset")
        .arg(&opts.mnist_dir)
        .arg("--out")
        .arg(&run_dir);
    cae.peak_rss_mib = Some(run_measured(&mut train, &scratch)?);
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).with_context(|| {
        format!(
            "the cae run wrote no {}",
            run_dir.join("metrics.csv").display()
        )
    })?;
    let epochs = parse_metrics_csv(&csv)?;
    cae.seconds_per_epoch = Some(median(epochs.iter().map(|e| e.seconds).collect()));
    cae.samples_per_second = Some(median(
        epochs.iter().map(|e| e.samples_per_second).collect(),
    ));
    cae.test_bce = epochs.last().map(|e| e.test_bce);

    let pytorch = match &opts.torch_python {
        Some(python) => Some(bench_pytorch(python, opts, &scratch)?),
        None => None,
    };
    let report = BenchReport {
        epochs: opts.epochs,
        cae,
        pytorch,
    };
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(scratch.join("report.json"), json)
        .with_context(|| format!("cannot write {}", scratch.join("report.json").display()))?;
    Ok(report)
}

fn bench_pytorch(python: &Path, opts: &BenchOptions, scratch: &Path) -> Result<Figures> {
    let dir = std::fs::canonicalize(&opts.torch_dir)
        .with_context(|| format!("no PyTorch reference at {}", opts.torch_dir.display()))?;
    let mnist = std::fs::canonicalize(&opts.mnist_dir)?;
    let json = scratch.join("torch-run.json");
    let ckpt = scratch.join("torch-run.pt");
    let threads = opts.threads.to_string();
    eprintln!(
        "== PyTorch reference: cae.py --arch rifai:1000, {} epochs",
        opts.epochs
    );
    let mut train = Command::new(python);
    train
        .current_dir(&dir)
        .args(["cae.py", "--arch", "rifai:1000", "--penalty", "analytic"])
        .args(["--epochs", &opts.epochs.to_string(), "--threads", &threads])
        .arg("--no-final-train-eval")
        .arg("--data-dir")
        .arg(&mnist)
        .arg("--json")
        .arg(&json)
        .arg("--save")
        .arg(&ckpt);
    let mut figures = Figures {
        peak_rss_mib: Some(run_measured(&mut train, scratch)?),
        ..Figures::default()
    };
    let history = parse_torch_history(
        &std::fs::read_to_string(&json)
            .with_context(|| format!("the PyTorch run wrote no {}", json.display()))?,
    )?;
    figures.seconds_per_epoch = Some(median(history.iter().map(|e| e.seconds).collect()));
    figures.samples_per_second = Some(median(
        history.iter().map(|e| e.samples_per_second).collect(),
    ));
    figures.test_bce = history.last().map(|e| e.test_bce);

    eprintln!("== PyTorch reference: bench.py infer and matmul");
    let infer = output(
        Command::new(python)
            .current_dir(&dir)
            .env("MNIST_DIR", &mnist)
            .args([
                "bench.py",
                "infer",
                "--arch",
                "rifai:1000",
                "--batch",
                "10000",
            ])
            .args(["--threads", &threads])
            .arg("--ckpt")
            .arg(&ckpt),
    )?;
    figures.inference_images_per_second = Some(parse_torch_images_per_second(&infer)?);
    let matmul = output(Command::new(python).current_dir(&dir).args([
        "bench.py",
        "matmul",
        "--hs",
        "1000",
        "--threads",
        &threads,
    ]))?;
    figures.matmul_gflops = Some(parse_torch_matmul_gflops(&matmul, 1000)?);
    Ok(figures)
}

/// The per-epoch figures both programs log.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochFigures {
    pub seconds: f64,
    pub samples_per_second: f64,
    pub test_bce: f64,
}

/// The epochs of a cae run's `metrics.csv` (columns found by their header names).
pub fn parse_metrics_csv(csv: &str) -> Result<Vec<EpochFigures>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .context("metrics.csv is empty")?
        .split(',')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .with_context(|| format!("metrics.csv has no `{name}` column"))
    };
    let (seconds, rate, bce) = (
        column("seconds")?,
        column("samples_per_second")?,
        column("test_bce")?,
    );
    let epochs = lines
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            let cell = |i: usize| -> Result<f64> {
                cells
                    .get(i)
                    .and_then(|c| c.trim().parse().ok())
                    .with_context(|| format!("bad metrics.csv row: {line}"))
            };
            Ok(EpochFigures {
                seconds: cell(seconds)?,
                samples_per_second: cell(rate)?,
                test_bce: cell(bce)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(!epochs.is_empty(), "metrics.csv has no epochs");
    Ok(epochs)
}

/// The epochs of the PyTorch reference's `--json` output (`history[].train_s`, `test_bce`,
/// `batches`; 600 samples per batch, as the reference is run).
pub fn parse_torch_history(json: &str) -> Result<Vec<EpochFigures>> {
    let value: serde_json::Value = serde_json::from_str(json).context("PyTorch JSON")?;
    let batch = value["config"]["batch"].as_f64().unwrap_or(600.0);
    let history = value["history"]
        .as_array()
        .context("PyTorch JSON has no `history`")?;
    let epochs = history
        .iter()
        .map(|h| {
            let get = |k: &str| {
                h[k].as_f64()
                    .with_context(|| format!("PyTorch epoch without `{k}`"))
            };
            let seconds = get("train_s")?;
            // The last batch of 60,000 / 600 is full, so batches × batch is the sample count.
            Ok(EpochFigures {
                seconds,
                samples_per_second: get("batches")? * batch / seconds,
                test_bce: get("test_bce")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(!epochs.is_empty(), "PyTorch JSON has no epochs");
    Ok(epochs)
}

/// The `share` field of the perf bench's product-share JSON.
pub fn parse_product_share(json: &str) -> Result<f64> {
    let value: serde_json::Value = serde_json::from_str(json).context("product-share JSON")?;
    let share = value["share"]
        .as_f64()
        .context("product-share JSON has no numeric `share`")?;
    ensure!(
        (0.0..=1.0).contains(&share),
        "product share {share} is not in [0, 1]"
    );
    Ok(share)
}

/// Images/s from `bench.py infer`'s line `... (19,607 img/s) over 20 reps`.
pub fn parse_torch_images_per_second(out: &str) -> Result<f64> {
    let line = out
        .lines()
        .find(|l| l.contains("img/s"))
        .context("bench.py infer printed no `img/s` line")?;
    let before = &line[..line.find(" img/s").context("no ` img/s`")?];
    let number = before[before.rfind('(').context("no `(` before img/s")? + 1..].replace(',', "");
    number
        .trim()
        .parse()
        .with_context(|| format!("cannot read images/s from `{line}`"))
}

/// The median GFLOP/s of `bench.py matmul`'s row for `H = h`
/// (`M K H median_ms min_ms GFLOP/s(median) GFLOP/s(best)`).
pub fn parse_torch_matmul_gflops(out: &str, h: usize) -> Result<f64> {
    out.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.len() == 7 && cells[2] == h.to_string())
        .and_then(|cells| cells[5].parse().ok())
        .with_context(|| format!("bench.py matmul printed no row for H={h}: {out}"))
}

/// The median of a criterion benchmark, in seconds, from `<dir>/new/estimates.json`.
pub fn criterion_median_seconds(dir: &Path) -> Result<f64> {
    let path = dir.join("new").join("estimates.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("criterion wrote no {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let ns = value["median"]["point_estimate"]
        .as_f64()
        .with_context(|| format!("{} has no median.point_estimate", path.display()))?;
    Ok(ns * 1e-9)
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    assert!(!values.is_empty(), "median of nothing");
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Runs `cmd` under `xtask measure-rss` and returns its peak resident memory in MiB. A child
/// process of its own is needed because the peak of *this* process's children would include
/// every earlier child, cargo and rustc among them.
fn run_measured(cmd: &mut Command, scratch: &Path) -> Result<f64> {
    let report = scratch.join("peak-rss-kib");
    let _ = std::fs::remove_file(&report);
    let mut wrapper = Command::new(std::env::current_exe()?);
    wrapper
        .arg("measure-rss")
        .arg("--report")
        .arg(&report)
        .arg("--")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        wrapper.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => wrapper.env(k, v),
            None => wrapper.env_remove(k),
        };
    }
    run(&mut wrapper)?;
    let kib: f64 = std::fs::read_to_string(&report)
        .with_context(|| format!("measure-rss wrote no {}", report.display()))?
        .trim()
        .parse()
        .context("measure-rss report")?;
    Ok(kib / 1024.0)
}

/// Runs `program args` as the only child of this process, then returns its exit code and its peak
/// resident set size in KiB (`getrusage(RUSAGE_CHILDREN).ru_maxrss`, which Linux reports in KiB).
#[cfg(unix)]
pub fn measure_rss(program: &std::ffi::OsStr, args: &[std::ffi::OsString]) -> Result<(i32, u64)> {
    let status = Command::new(program)
        .args(args)
        .status()
        .with_context(|| format!("cannot run {}", program.to_string_lossy()))?;
    // SAFETY: getrusage only writes into the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) != 0 {
            bail!("getrusage failed: {}", std::io::Error::last_os_error());
        }
        usage
    };
    let kib = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    #[cfg(target_os = "macos")]
    let kib = kib / 1024; // macOS reports bytes.
    Ok((status.code().unwrap_or(1), kib))
}

#[cfg(not(unix))]
pub fn measure_rss(_: &std::ffi::OsStr, _: &[std::ffi::OsString]) -> Result<(i32, u64)> {
    bail!("peak memory is measured with getrusage, which this platform lacks")
}

/// `Some(python)` if `python -c "import torch"` succeeds.
pub fn python_with_torch(python: &Path) -> bool {
    Command::new(python)
        .args(["-c", "import torch"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Reads one figure of a program's [`Figures`].
type Getter = fn(&Figures) -> Option<f64>;

/// The report as a table: one row per figure, cae beside PyTorch and their ratio.
pub fn render(report: &BenchReport) -> String {
    let rows: [(&str, Getter, usize); 9] = [
        ("train s/epoch (median)", |f| f.seconds_per_epoch, 2),
        ("train samples/s", |f| f.samples_per_second, 0),
        ("test BCE after the run", |f| f.test_bce, 5),
        ("peak RSS of training (MiB)", |f| f.peak_rss_mib, 0),
        (
            "inference images/s (10k)",
            |f| f.inference_images_per_second,
            0,
        ),
        ("matmul 600x784x1000 GFLOP/s", |f| f.matmul_gflops, 1),
        (
            "train step ms (criterion)",
            |f| f.step_seconds.map(|s| s * 1e3),
            1,
        ),
        ("matrix-product share of a step", |f| f.matmul_share, 2),
        ("step GFLOP/s (dense-equivalent)", |f| f.step_gflops, 1),
    ];
    let cell =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let mut out = format!(
        "784-1000-784 sigmoid CAE (default preset), batch 600, {} epochs on MNIST\n{:<30} {:>12} {:>12} {:>12}\n",
        report.epochs, "", "cae", "PyTorch", "cae/PyTorch"
    );
    for (name, get, digits) in rows {
        let ours = get(&report.cae);
        let theirs = report.pytorch.as_ref().and_then(get);
        let ratio = ours.zip(theirs).map(|(a, b)| a / b);
        out.push_str(&format!(
            "{name:<30} {:>12} {:>12} {:>12}\n",
            cell(ours, digits),
            cell(theirs, digits),
            cell(ratio, 2)
        ));
    }
    if report.pytorch.is_none() {
        out.push_str(
            "PyTorch: not run (no Python with torch; see ../shared/peers/torch/README.md, or pass --torch-python)\n",
        );
    }
    out
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|p| if p.is_absolute() { p } else { root.join(p) })
        .unwrap_or_else(|| root.join("target"))
}

fn cargo() -> std::ffi::OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}

fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    ensure!(status.success(), "{cmd:?} failed with {status}");
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    ensure!(
        out.status.success(),
        "{cmd:?} failed with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_csv_columns_are_found_by_name() {
        let csv = "epoch,train_bce,test_bce,seconds,samples_per_second\n\
                   1,0.2,0.10,7.5,8000\n2,0.1,0.09,6.5,9200\n3,0.1,0.08,7.0,8500\n";
        let e = parse_metrics_csv(csv).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[2].test_bce, 0.08);
        assert_eq!(median(e.iter().map(|e| e.seconds).collect()), 7.0);
        assert!(parse_metrics_csv("epoch,seconds\n1,2\n").is_err());
        assert!(parse_metrics_csv("seconds,samples_per_second,test_bce\n").is_err());
    }

    #[test]
    fn product_share_is_read_and_must_be_a_fraction() {
        let json =
            r#"{"share": 0.85, "product_seconds": 0.034, "step_seconds": 0.04, "steps": 50}"#;
        assert_eq!(parse_product_share(json).unwrap(), 0.85);
        assert!(parse_product_share(r#"{"share": 1.2}"#).is_err());
        assert!(parse_product_share(r#"{"steps": 50}"#).is_err());
        assert!(parse_product_share("not json").is_err());
    }

    #[test]
    fn torch_history_gives_samples_per_second_from_batches() {
        let json = r#"{"config": {"batch": 600}, "history": [
            {"epoch": 1, "train_s": 10.0, "test_bce": 0.1, "batches": 100},
            {"epoch": 2, "train_s": 12.0, "test_bce": 0.09, "batches": 100}]}"#;
        let e = parse_torch_history(json).unwrap();
        assert_eq!(e[0].samples_per_second, 6000.0);
        assert_eq!(e[1].test_bce, 0.09);
        assert_eq!(median(e.iter().map(|e| e.seconds).collect()), 11.0);
        assert!(parse_torch_history(r#"{"history": []}"#).is_err());
    }

    #[test]
    fn torch_benchmark_lines_are_read() {
        let infer = "# torch 2.15.0 threads=2\ninfer arch=rifai:1000 batch=10000: median 0.5100 s  min 0.5000 s  (19,607 img/s) over 20 reps\n";
        assert_eq!(parse_torch_images_per_second(infer).unwrap(), 19607.0);
        assert!(parse_torch_images_per_second("nothing").is_err());
        let matmul = "# torch 2.15.0 threads=2\nM     K     H      median_ms   min_ms   GFLOP/s(median)  GFLOP/s(best)\n\
                      600   784   512        7.000     6.900         68.8          69.8\n\
                      600   784   1000      14.000    13.800         67.2          68.2\n";
        assert_eq!(parse_torch_matmul_gflops(matmul, 1000).unwrap(), 67.2);
        assert!(parse_torch_matmul_gflops(matmul, 2048).is_err());
    }

    #[test]
    fn criterion_median_is_read_in_seconds() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("new")).unwrap();
        std::fs::write(
            dir.path().join("new/estimates.json"),
            r#"{"mean": {"point_estimate": 2.0e7}, "median": {"point_estimate": 1.5e7}}"#,
        )
        .unwrap();
        assert!((criterion_median_seconds(dir.path()).unwrap() - 0.015).abs() < 1e-12);
        assert!(criterion_median_seconds(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn render_shows_ratios_only_where_both_ran() {
        let report = BenchReport {
            epochs: 2,
            cae: Figures {
                seconds_per_epoch: Some(6.5),
                inference_images_per_second: Some(40_000.0),
                ..Figures::default()
            },
            pytorch: Some(Figures {
                seconds_per_epoch: Some(10.0),
                ..Figures::default()
            }),
        };
        let table = render(&report);
        let row = table
            .lines()
            .find(|l| l.starts_with("train s/epoch"))
            .unwrap();
        assert!(row.ends_with("0.65"), "{row}");
        let row = table.lines().find(|l| l.starts_with("inference")).unwrap();
        assert!(row.contains("40000") && row.ends_with('-'), "{row}");
    }
}
