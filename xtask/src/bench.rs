//! `cargo xtask bench`: training speed and memory of cae's presets, each set beside the PyTorch
//! reference (`../shared/peers/torch/`) doing the same work when it is installed.
//!
//! `--preset NAME` (repeatable) picks what is measured; without it, only `default`:
//!
//! * `default` (cae-cli's default preset, 784-1000-784 sigmoid, untied, exact penalty; PyTorch
//!   `cae.py --arch rifai:1000 --penalty analytic`), measured three ways:
//!   1. criterion (`cae-train/benches/perf.rs`, on MNIST images): one training step, one dense
//!      600×784×1000 matmul, the same product with the input's zeros skipped, and inference of
//!      the 10,000 test images, from which the achieved GFLOP/s follow (a step does five such
//!      products: two forward, three backward; the two that involve the input skip its zeros, the
//!      other three are dense); beside them, the share of a step spent in those products, timed
//!      inside 50 steps (`--skip-criterion` leaves this part out);
//!   2. a real `cae-cli train` run of `--epochs` full epochs (release build): seconds per epoch
//!      and per step, samples/s, test BCE on all 10,000 test images and the peak resident memory
//!      of the process;
//!   3. the PyTorch reference: the same training run, its inference and matmul micro-benchmarks,
//!      and its peak memory, so every figure gets a cae/PyTorch ratio.
//! * `conv` (the original program's conv net, Hutchinson penalty with 4 probes; PyTorch
//!   `cae.py --arch seedconv --penalty hutchinson --probes 4`) and `deep` (784-512-128-32,
//!   softplus hidden, sigmoid code, exact penalty; PyTorch `cae.py --arch mlp:512,128,32
//!   --hidden-act softplus --code-act sigmoid --penalty jacrev`): a step of these takes about a
//!   second or more, so each side trains one epoch cut to `--steps` steps of 600 images
//!   (`cae-cli train --train-limit 600·steps`, `cae.py --max-batches steps`) and is tested on the
//!   first 600 test images (`--test-limit 600`, the reference's `test_bce_first600`). Reported:
//!   seconds per step, its epoch-equivalent (100 steps, one pass over MNIST's 60,000 images),
//!   samples/s, test BCE, peak resident memory.
//!
//! Both sides use batch 600, Adam lr 5e-3 and λ 1e-4, passed explicitly; only the training steps
//! are timed (cae-cli's `seconds` column and the reference's `train_s` both leave out the test
//! pass). The report is printed as one table whose rows name their preset, and written as JSON, one
//! entry per preset, to `target/bench/report.json` (rewritten after each preset, so an interrupted
//! bench keeps what it measured).
//!
//! tidy: long — running both sides, reading their outputs and rendering the one report are kept
//! together so that each figure's source and its rendering can be read side by side; a fifth is tests.
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
/// The minibatch size of every run, on both sides.
pub const BATCH: usize = 600;
/// Steps of a full epoch: MNIST's 60,000 training images in batches of [`BATCH`].
pub const FULL_EPOCH_STEPS: usize = 60_000 / BATCH;
/// Test images the presets cut to `--steps` are evaluated on (the first ones, on both sides).
pub const SHORT_TEST_IMAGES: usize = 600;
/// `--steps` when none is given.
pub const DEFAULT_STEPS: usize = 20;
/// Adam's learning rate and the penalty weight λ of every run, on both sides.
const LR: &str = "0.005";
const LAMBDA: &str = "0.0001";

/// A preset `bench` can measure, with its PyTorch equivalent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum BenchPreset {
    /// cae-cli's default preset (784-1000-784 sigmoid, untied) against `rifai:1000`.
    Default,
    /// the original program's conv net with the Hutchinson penalty against `seedconv`.
    Conv,
    /// 784-512-128-32 softplus/sigmoid with the exact penalty against `mlp:512,128,32`.
    Deep,
}

impl BenchPreset {
    /// The name `--preset` takes and the report shows.
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Conv => "conv",
            Self::Deep => "deep",
        }
    }

    /// The model, in words.
    pub fn model(self) -> &'static str {
        match self {
            Self::Default => "784-1000-784 sigmoid, untied, exact penalty",
            Self::Conv => "conv net of the original program, Hutchinson penalty, 4 probes",
            Self::Deep => "784-512-128-32 softplus hidden, sigmoid code, exact penalty",
        }
    }

    /// `cae-cli train`'s `--preset`, or `None` for its default.
    pub fn cae_preset(self) -> Option<&'static str> {
        match self {
            Self::Default => None,
            Self::Conv => Some("conv"),
            Self::Deep => Some("deep"),
        }
    }

    /// The arguments that make `cae.py` train the same model with the same penalty.
    pub fn torch_model_args(self) -> &'static [&'static str] {
        match self {
            Self::Default => &["--arch", "rifai:1000", "--penalty", "analytic"],
            Self::Conv => &[
                "--arch",
                "seedconv",
                "--penalty",
                "hutchinson",
                "--probes",
                "4",
            ],
            Self::Deep => &[
                "--arch",
                "mlp:512,128,32",
                "--hidden-act",
                "softplus",
                "--code-act",
                "sigmoid",
                "--penalty",
                "jacrev",
            ],
        }
    }

    /// Whether its runs are cut to `--steps` steps (a full epoch would take minutes).
    pub fn step_limited(self) -> bool {
        self != Self::Default
    }
}

/// `presets` in the order given, each once; just `default` when none is given.
pub fn presets_or_default(presets: &[BenchPreset]) -> Vec<BenchPreset> {
    let mut out = Vec::new();
    for &p in presets {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    if out.is_empty() {
        out.push(BenchPreset::Default);
    }
    out
}

/// The training work of one preset's runs, the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Work {
    pub epochs: usize,
    /// Steps of [`BATCH`] images per epoch.
    pub steps_per_epoch: usize,
    /// Whether the epochs are cut short (`--train-limit` / `--max-batches`) rather than full.
    pub cut: bool,
    /// Test images evaluated after each epoch (the first ones of the MNIST test set).
    pub test_images: usize,
}

impl Work {
    /// The work `opts` asks of `preset`: `--epochs` full epochs, or one epoch of `--steps` steps.
    pub fn of(preset: BenchPreset, opts: &BenchOptions) -> Self {
        if preset.step_limited() {
            Self {
                epochs: 1,
                steps_per_epoch: opts.steps,
                cut: true,
                test_images: SHORT_TEST_IMAGES,
            }
        } else {
            Self {
                epochs: opts.epochs,
                steps_per_epoch: FULL_EPOCH_STEPS,
                cut: false,
                test_images: 10_000,
            }
        }
    }

    /// In words, for the report.
    pub fn describe(&self) -> String {
        let epochs = if self.epochs == 1 {
            "1 epoch".to_string()
        } else {
            format!("{} epochs", self.epochs)
        };
        let test = if self.test_images == 10_000 {
            "all 10,000 test images".to_string()
        } else {
            format!("the first {} test images", self.test_images)
        };
        if self.cut {
            format!(
                "{epochs} cut to {} steps of {BATCH} images, test BCE on {test}",
                self.steps_per_epoch
            )
        } else {
            format!(
                "{epochs} of {} steps of {BATCH} images, test BCE on {test}",
                self.steps_per_epoch
            )
        }
    }
}

/// `cae-cli`'s arguments for `preset`'s run (the data and run directories follow them).
pub fn cae_train_args(preset: BenchPreset, work: &Work) -> Vec<String> {
    let mut args: Vec<String> = vec!["train".into(), "-q".into()];
    if let Some(name) = preset.cae_preset() {
        args.extend(["--preset".into(), name.into()]);
    }
    args.extend(
        [
            "--epochs",
            &work.epochs.to_string(),
            "--batch-size",
            &BATCH.to_string(),
            "--lr",
            LR,
            "--lambda",
            LAMBDA,
        ]
        .map(String::from),
    );
    if work.cut {
        args.extend(
            [
                "--train-limit",
                &(work.steps_per_epoch * BATCH).to_string(),
                "--test-limit",
                &work.test_images.to_string(),
            ]
            .map(String::from),
        );
    }
    args
}

/// `cae.py`'s arguments for `preset`'s run (`--data-dir`, `--json` and `--save` follow them).
pub fn torch_train_args(preset: BenchPreset, work: &Work, threads: usize) -> Vec<String> {
    let mut args: Vec<String> = vec!["cae.py".into()];
    args.extend(preset.torch_model_args().iter().map(|a| a.to_string()));
    args.extend(
        [
            "--epochs",
            &work.epochs.to_string(),
            "--batch",
            &BATCH.to_string(),
            "--lr",
            LR,
            "--lam",
            LAMBDA,
            "--threads",
            &threads.to_string(),
            "--no-final-train-eval",
        ]
        .map(String::from),
    );
    if work.cut {
        args.extend(["--max-batches".into(), work.steps_per_epoch.to_string()]);
    }
    args
}

/// What `bench` measures and against what.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// The presets to measure, in this order (see [`presets_or_default`]).
    pub presets: Vec<BenchPreset>,
    /// Full epochs of the `default` preset's training runs (the median epoch is reported).
    pub epochs: usize,
    /// Training steps of the `conv` and `deep` runs (one epoch cut to this many steps).
    pub steps: usize,
    /// An absolute directory with the MNIST IDX `.gz` files (both programs read it); see
    /// [`resolve_mnist_dir`].
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

/// `--mnist-dir` made absolute (relative paths are taken from the current directory, before the
/// bench runs anything in another one), with an error that says what to pass if it is missing.
pub fn resolve_mnist_dir(dir: &Path) -> Result<PathBuf> {
    let resolved = std::fs::canonicalize(dir).with_context(|| {
        format!(
            "MNIST directory {} not found: pass --mnist-dir DIR with the MNIST IDX .gz files \
             (`cae-cli train` downloads them into ~/.cache/cae/mnist)",
            dir.display()
        )
    })?;
    ensure!(
        resolved.is_dir(),
        "--mnist-dir {} is not a directory",
        dir.display()
    );
    Ok(resolved)
}

/// One program's figures; `None` where that part was not run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// Seconds of one training step of [`BATCH`] images in the real run (from the median samples/s).
    pub seconds_per_step: Option<f64>,
    /// Median training seconds of an epoch; for presets cut to `--steps`, the epoch-equivalent
    /// [`FULL_EPOCH_STEPS`] × `seconds_per_step`.
    pub seconds_per_epoch: Option<f64>,
    pub samples_per_second: Option<f64>,
    /// Test BCE after the run, on the preset's [`Work::test_images`].
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

impl Figures {
    /// The training figures of a run's epochs, done as `work` says.
    fn from_epochs(epochs: &[EpochFigures], work: &Work) -> Self {
        let samples_per_second = median(epochs.iter().map(|e| e.samples_per_second).collect());
        let seconds_per_step = BATCH as f64 / samples_per_second;
        Self {
            seconds_per_step: Some(seconds_per_step),
            seconds_per_epoch: Some(if work.cut {
                FULL_EPOCH_STEPS as f64 * seconds_per_step
            } else {
                median(epochs.iter().map(|e| e.seconds).collect())
            }),
            samples_per_second: Some(samples_per_second),
            test_bce: epochs.last().map(|e| e.test_bce),
            ..Self::default()
        }
    }
}

/// One preset's figures, cae beside PyTorch.
#[derive(Debug, Clone, Serialize)]
pub struct PresetReport {
    pub preset: BenchPreset,
    pub model: String,
    pub work: Work,
    /// `cae-cli`'s arguments (before `--dataset` and `--out`).
    pub cae_args: Vec<String>,
    /// `cae.py`'s arguments (before `--data-dir`, `--json` and `--save`).
    pub pytorch_args: Vec<String>,
    pub cae: Figures,
    pub pytorch: Option<Figures>,
}

impl PresetReport {
    /// A report of `preset` with no figures yet.
    pub fn new(preset: BenchPreset, work: Work, threads: usize) -> Self {
        Self {
            preset,
            model: preset.model().to_string(),
            work,
            cae_args: cae_train_args(preset, &work),
            pytorch_args: torch_train_args(preset, &work, threads),
            cae: Figures::default(),
            pytorch: None,
        }
    }
}

/// The whole report, also written as JSON to `target/bench/report.json`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BenchReport {
    /// One entry per preset, in the order measured.
    pub presets: Vec<PresetReport>,
    /// Whether PyTorch was run (where it was not, every `pytorch` is `null`).
    pub pytorch_run: bool,
}

/// Runs everything `opts` asks for from the workspace at `root`.
pub fn bench(root: &Path, opts: &BenchOptions) -> Result<BenchReport> {
    ensure!(opts.epochs > 0, "--epochs must be at least 1");
    ensure!(opts.steps > 0, "--steps must be at least 1");
    ensure!(
        opts.mnist_dir.is_absolute(),
        "the MNIST directory {} must be absolute (see resolve_mnist_dir)",
        opts.mnist_dir.display()
    );
    for file in ["train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"] {
        ensure!(
            opts.mnist_dir.join(file).is_file(),
            "{} has no {file}: pass --mnist-dir DIR with the MNIST IDX .gz files (`cae-cli train` downloads them into ~/.cache/cae/mnist)",
            opts.mnist_dir.display()
        );
    }
    let presets = presets_or_default(&opts.presets);
    let target = target_dir(root);
    let scratch = target.join("bench");
    std::fs::create_dir_all(&scratch)
        .with_context(|| format!("cannot create {}", scratch.display()))?;

    let criterion = if presets.contains(&BenchPreset::Default) && !opts.skip_criterion {
        Some(bench_criterion(root, opts, &target, &scratch)?)
    } else {
        None
    };

    run(Command::new(cargo())
        .current_dir(root)
        .args(["build", "--release", "-p", "cae-cli"]))?;
    let cae_cli = target.join("release").join(exe("cae-cli"));
    let mut report = BenchReport {
        presets: Vec::new(),
        pytorch_run: opts.torch_python.is_some(),
    };
    for preset in presets {
        let work = Work::of(preset, opts);
        let mut entry = PresetReport::new(preset, work, opts.threads);
        entry.cae = bench_cae(&cae_cli, &entry, opts, &scratch)?;
        if preset == BenchPreset::Default {
            if let Some(c) = &criterion {
                entry.cae = Figures {
                    step_seconds: c.step_seconds,
                    matmul_gflops: c.matmul_gflops,
                    matmul_share: c.matmul_share,
                    step_gflops: c.step_gflops,
                    inference_images_per_second: c.inference_images_per_second,
                    ..entry.cae
                };
            }
        }
        if let Some(python) = &opts.torch_python {
            entry.pytorch = Some(bench_pytorch(python, &entry, opts, &scratch)?);
        }
        report.presets.push(entry);
        let json = serde_json::to_string_pretty(&report)?;
        std::fs::write(scratch.join("report.json"), json)
            .with_context(|| format!("cannot write {}", scratch.join("report.json").display()))?;
    }
    Ok(report)
}

/// The criterion part (default preset only): cae's step, matmul, product share and inference.
fn bench_criterion(
    root: &Path,
    opts: &BenchOptions,
    target: &Path,
    scratch: &Path,
) -> Result<Figures> {
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
    Ok(Figures {
        step_seconds: Some(step),
        matmul_gflops: Some(MATMUL_FLOPS / matmul / 1e9),
        matmul_share: Some(parse_product_share(
            &std::fs::read_to_string(&share_file)
                .with_context(|| format!("the perf bench wrote no {}", share_file.display()))?,
        )?),
        step_gflops: Some(STEP_MATMUL_FLOPS / step / 1e9),
        inference_images_per_second: Some(INFER_IMAGES / infer),
        ..Figures::default()
    })
}

/// A real `cae-cli train` run of `entry`'s preset and work.
fn bench_cae(
    cae_cli: &Path,
    entry: &PresetReport,
    opts: &BenchOptions,
    scratch: &Path,
) -> Result<Figures> {
    eprintln!(
        "== cae-cli {} (release build): {}",
        entry.cae_args.join(" "),
        entry.work.describe()
    );
    let run_dir = scratch.join(format!("cae-run-{}", entry.preset.name()));
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .with_context(|| format!("cannot remove {}", run_dir.display()))?;
    }
    let mut train = Command::new(cae_cli);
    train
        .args(&entry.cae_args)
        .arg("--dataset")
        .arg(&opts.mnist_dir)
        .arg("--out")
        .arg(&run_dir);
    let peak = run_measured(&mut train, scratch)?;
    let csv = std::fs::read_to_string(run_dir.join("metrics.csv")).with_context(|| {
        format!(
            "the cae run wrote no {}",
            run_dir.join("metrics.csv").display()
        )
    })?;
    Ok(Figures {
        peak_rss_mib: Some(peak),
        ..Figures::from_epochs(&parse_metrics_csv(&csv)?, &entry.work)
    })
}

/// The PyTorch reference's run of `entry`'s preset and work; for `default` also its inference and
/// matmul micro-benchmarks.
fn bench_pytorch(
    python: &Path,
    entry: &PresetReport,
    opts: &BenchOptions,
    scratch: &Path,
) -> Result<Figures> {
    let dir = std::fs::canonicalize(&opts.torch_dir)
        .with_context(|| format!("no PyTorch reference at {}", opts.torch_dir.display()))?;
    let name = entry.preset.name();
    let json = scratch.join(format!("torch-run-{name}.json"));
    let ckpt = scratch.join(format!("torch-run-{name}.pt"));
    let threads = opts.threads.to_string();
    eprintln!(
        "== PyTorch reference: {}: {}",
        entry.pytorch_args.join(" "),
        entry.work.describe()
    );
    let _ = std::fs::remove_file(&json);
    let mut train = Command::new(python);
    train
        .current_dir(&dir)
        .args(&entry.pytorch_args)
        .arg("--data-dir")
        .arg(&opts.mnist_dir)
        .arg("--json")
        .arg(&json);
    if entry.preset == BenchPreset::Default {
        train.arg("--save").arg(&ckpt);
    }
    let peak = run_measured(&mut train, scratch)?;
    let history = parse_torch_history(
        &std::fs::read_to_string(&json)
            .with_context(|| format!("the PyTorch run wrote no {}", json.display()))?,
    )?;
    let mut figures = Figures {
        peak_rss_mib: Some(peak),
        ..Figures::from_epochs(&history, &entry.work)
    };
    if entry.work.test_images != 10_000 {
        // The reference always tests on all 10,000 images; its first-600 figure is the one cae's
        // --test-limit 600 matches.
        ensure!(
            entry.work.test_images == SHORT_TEST_IMAGES,
            "the PyTorch reference reports test BCE on 10,000 or the first {SHORT_TEST_IMAGES} images only"
        );
        figures.test_bce = history.last().and_then(|e| e.test_bce_first600);
    }
    if entry.preset != BenchPreset::Default {
        return Ok(figures);
    }

    eprintln!("== PyTorch reference: bench.py infer and matmul");
    let infer = output(
        Command::new(python)
            .current_dir(&dir)
            .env("MNIST_DIR", &opts.mnist_dir)
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
    /// Test BCE on the first 600 test images (the PyTorch reference logs it; cae-cli does not).
    pub test_bce_first600: Option<f64>,
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
                test_bce_first600: None,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    ensure!(!epochs.is_empty(), "metrics.csv has no epochs");
    Ok(epochs)
}

/// The epochs of the PyTorch reference's `--json` output (`history[].train_s`, `test_bce`,
/// `test_bce_first600` where present, `batches`: the steps actually run, so `--max-batches` is
/// counted; `config.batch` samples per batch, 600 if absent).
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
                test_bce_first600: h["test_bce_first600"].as_f64(),
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

/// The report as one table: each row names its preset and figure, cae beside PyTorch and their
/// ratio; a preset's rows with no figure on either side are left out. Above it, what each preset
/// is and the work both sides did.
pub fn render(report: &BenchReport) -> String {
    let cell =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let mut out = format!(
        "cae beside the PyTorch reference on MNIST (batch {BATCH}, Adam lr 5e-3, λ 1e-4; only training steps timed):\n"
    );
    for p in &report.presets {
        out.push_str(&format!(
            "  {:<8} {}; {}\n           cae-cli {}\n           {}\n",
            p.preset.name(),
            p.model,
            p.work.describe(),
            p.cae_args.join(" "),
            p.pytorch_args.join(" ")
        ));
    }
    out.push_str(&format!(
        "\n{:<8} {:<34} {:>12} {:>12} {:>12}\n",
        "preset", "figure", "cae", "PyTorch", "cae/PyTorch"
    ));
    for p in &report.presets {
        let epoch_row = if p.work.cut {
            format!("train s/epoch-equiv. ({FULL_EPOCH_STEPS} steps)")
        } else {
            "train s/epoch (median)".to_string()
        };
        let rows: [(&str, Getter, usize); 10] = [
            ("train s/step", |f| f.seconds_per_step, 3),
            (&epoch_row, |f| f.seconds_per_epoch, 2),
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
        for (name, get, digits) in rows {
            let ours = get(&p.cae);
            let theirs = p.pytorch.as_ref().and_then(get);
            if ours.is_none() && theirs.is_none() {
                continue;
            }
            let ratio = ours.zip(theirs).map(|(a, b)| a / b);
            out.push_str(&format!(
                "{:<8} {name:<34} {:>12} {:>12} {:>12}\n",
                p.preset.name(),
                cell(ours, digits),
                cell(theirs, digits),
                cell(ratio, 2)
            ));
        }
    }
    if !report.pytorch_run {
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
        assert_eq!(e[1].test_bce_first600, None);
        assert!(parse_torch_history(r#"{"history": []}"#).is_err());
        // --max-batches 20: the steps actually run count, and the first-600 test BCE is read.
        let json = r#"{"config": {"batch": 600, "max_batches": 20}, "history": [
            {"epoch": 1, "train_s": 16.0, "test_bce": 0.2, "test_bce_first600": 0.21, "batches": 20}]}"#;
        let e = parse_torch_history(json).unwrap();
        assert_eq!(e[0].samples_per_second, 750.0);
        assert_eq!(e[0].test_bce_first600, Some(0.21));
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

    fn options(steps: usize) -> BenchOptions {
        BenchOptions {
            presets: vec![],
            epochs: 3,
            steps,
            mnist_dir: PathBuf::from("/data/mnist"),
            torch_python: None,
            torch_dir: PathBuf::from("/peers/torch"),
            threads: 2,
            skip_criterion: true,
        }
    }

    #[test]
    fn presets_keep_their_order_once_and_default_to_default() {
        use BenchPreset::*;
        assert_eq!(presets_or_default(&[]), vec![Default]);
        assert_eq!(
            presets_or_default(&[Deep, Default, Deep, Conv]),
            vec![Deep, Default, Conv]
        );
        assert_eq!(
            [Default, Conv, Deep].map(BenchPreset::name),
            ["default", "conv", "deep"]
        );
        assert!(!Default.step_limited() && Conv.step_limited() && Deep.step_limited());
    }

    #[test]
    fn default_preset_trains_full_epochs_on_both_sides() {
        let work = Work::of(BenchPreset::Default, &options(20));
        assert_eq!(
            work,
            Work {
                epochs: 3,
                steps_per_epoch: 100,
                cut: false,
                test_images: 10_000
            }
        );
        assert_eq!(
            cae_train_args(BenchPreset::Default, &work).join(" "),
            "train -q --epochs 3 --batch-size 600 --lr 0.005 --lambda 0.0001"
        );
        assert_eq!(
            torch_train_args(BenchPreset::Default, &work, 2).join(" "),
            "cae.py --arch rifai:1000 --penalty analytic --epochs 3 --batch 600 --lr 0.005 \
             --lam 0.0001 --threads 2 --no-final-train-eval"
        );
    }

    #[test]
    fn conv_and_deep_do_the_same_steps_on_both_sides() {
        let opts = options(7);
        let work = Work::of(BenchPreset::Conv, &opts);
        assert_eq!(
            work,
            Work {
                epochs: 1,
                steps_per_epoch: 7,
                cut: true,
                test_images: 600
            }
        );
        assert_eq!(
            cae_train_args(BenchPreset::Conv, &work).join(" "),
            "train -q --preset conv --epochs 1 --batch-size 600 --lr 0.005 --lambda 0.0001 \
             --train-limit 4200 --test-limit 600"
        );
        assert_eq!(
            torch_train_args(BenchPreset::Conv, &work, 2).join(" "),
            "cae.py --arch seedconv --penalty hutchinson --probes 4 --epochs 1 --batch 600 \
             --lr 0.005 --lam 0.0001 --threads 2 --no-final-train-eval --max-batches 7"
        );
        let work = Work::of(BenchPreset::Deep, &opts);
        assert_eq!(
            cae_train_args(BenchPreset::Deep, &work).join(" "),
            "train -q --preset deep --epochs 1 --batch-size 600 --lr 0.005 --lambda 0.0001 \
             --train-limit 4200 --test-limit 600"
        );
        assert_eq!(
            torch_train_args(BenchPreset::Deep, &work, 4).join(" "),
            "cae.py --arch mlp:512,128,32 --hidden-act softplus --code-act sigmoid \
             --penalty jacrev --epochs 1 --batch 600 --lr 0.005 --lam 0.0001 --threads 4 \
             --no-final-train-eval --max-batches 7"
        );
        assert_eq!(
            work.describe(),
            "1 epoch cut to 7 steps of 600 images, test BCE on the first 600 test images"
        );
    }

    #[test]
    fn step_figures_come_from_samples_per_second() {
        let epochs = [EpochFigures {
            seconds: 40.0,
            samples_per_second: 300.0,
            test_bce: 0.2,
            test_bce_first600: Some(0.21),
        }];
        let cut = Work::of(BenchPreset::Deep, &options(20));
        let f = Figures::from_epochs(&epochs, &cut);
        assert_eq!(f.seconds_per_step, Some(2.0));
        // Cut short: the epoch-equivalent of 100 steps, not the 20 steps' 40 s.
        assert_eq!(f.seconds_per_epoch, Some(200.0));
        assert_eq!(f.test_bce, Some(0.2));
        let full = Work::of(BenchPreset::Default, &options(20));
        assert_eq!(
            Figures::from_epochs(&epochs, &full).seconds_per_epoch,
            Some(40.0)
        );
    }

    #[test]
    fn mnist_dir_is_made_absolute_or_rejected_clearly() {
        let here = resolve_mnist_dir(Path::new(".")).unwrap();
        assert!(here.is_absolute());
        assert_eq!(
            here,
            std::env::current_dir().unwrap().canonicalize().unwrap()
        );
        let err = format!(
            "{:#}",
            resolve_mnist_dir(Path::new("no/such/mnist-dir")).unwrap_err()
        );
        assert!(
            err.contains("no/such/mnist-dir") && err.contains("--mnist-dir"),
            "{err}"
        );
        let file = tempfile::NamedTempFile::new().unwrap();
        assert!(resolve_mnist_dir(file.path()).is_err());
    }

    #[test]
    fn bench_wants_an_absolute_mnist_dir() {
        let mut opts = options(20);
        opts.mnist_dir = PathBuf::from("relative/mnist");
        let err = bench(Path::new("/nonexistent-root"), &opts).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[test]
    fn render_shows_ratios_only_where_both_ran_and_names_each_preset() {
        let default_work = Work::of(BenchPreset::Default, &options(20));
        let deep_work = Work::of(BenchPreset::Deep, &options(20));
        let mut default = PresetReport::new(BenchPreset::Default, default_work, 2);
        default.cae = Figures {
            seconds_per_epoch: Some(6.5),
            inference_images_per_second: Some(40_000.0),
            ..Figures::default()
        };
        default.pytorch = Some(Figures {
            seconds_per_epoch: Some(10.0),
            ..Figures::default()
        });
        let mut deep = PresetReport::new(BenchPreset::Deep, deep_work, 2);
        deep.cae = Figures {
            seconds_per_step: Some(0.4),
            seconds_per_epoch: Some(40.0),
            ..Figures::default()
        };
        deep.pytorch = Some(Figures {
            seconds_per_step: Some(0.8),
            seconds_per_epoch: Some(80.0),
            ..Figures::default()
        });
        let report = BenchReport {
            presets: vec![default, deep],
            pytorch_run: true,
        };
        let table = render(&report);
        let row = |prefix: &str| {
            table
                .lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no `{prefix}` row in\n{table}"))
        };
        let r = row("default  train s/epoch (median)");
        assert!(r.ends_with("0.65"), "{r}");
        let r = row("default  inference");
        assert!(r.contains("40000") && r.ends_with('-'), "{r}");
        let r = row("deep     train s/step");
        assert!(r.contains("0.400") && r.ends_with("0.50"), "{r}");
        let r = row("deep     train s/epoch-equiv. (100 steps)");
        assert!(r.ends_with("0.50"), "{r}");
        // Rows with no figure on either side are left out.
        assert!(!table.contains("deep     inference"), "{table}");
        assert!(!table.contains("default  train s/step"), "{table}");
        // The work of each preset is spelled out above the table.
        assert!(table.contains("--max-batches 20"), "{table}");
        assert!(
            table.contains("--train-limit 12000 --test-limit 600"),
            "{table}"
        );
        assert!(!table.contains("not run"), "{table}");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["presets"][1]["preset"], "deep");
        assert_eq!(json["presets"][1]["work"]["steps_per_epoch"], 20);
        assert_eq!(json["presets"][0]["cae"]["seconds_per_epoch"], 6.5);
    }
}
