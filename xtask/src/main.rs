//! `cargo xtask <command>`: see `cargo xtask --help`. Thin wrapper over the `xtask` library.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};
use xtask::fetch::{self, FetchArgs};

#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Project automation for cae",
    arg_required_else_help = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// One variant per task; add new tasks here and dispatch them in `main`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Download trained weights, verified by their pinned SHA-256, into the place `cae-cli`
    /// looks when given no --weights.
    FetchWeights(FetchWeightsArgs),
    /// Lay out a Hugging Face model repository for a trained run: the weights, their SHA-256,
    /// config.json and a model card with the Hub's metadata and measured metrics.
    PublishWeights(PublishWeightsArgs),
    /// Build `cae-cli` with the dist profile and package it under target/dist/.
    Dist,
    /// Measure training speed and memory of cae's presets (default: the default preset, also
    /// its inference and matmul), each beside the PyTorch reference doing the same work when it is
    /// installed (report in target/bench/report.json).
    Bench(BenchArgs),
    /// Run a command and write its peak resident memory (KiB) to --report (used by `bench`).
    #[command(hide = true)]
    MeasureRss {
        #[arg(long)]
        report: PathBuf,
        #[arg(trailing_var_arg = true, required = true, num_args = 1..)]
        command: Vec<std::ffi::OsString>,
    },
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// Preset to measure, repeatable, in the order given [default: default]. `default`: full
    /// epochs, criterion micro-benchmarks, inference; `conv`, `deep`: --steps training steps.
    #[arg(long = "preset", value_name = "NAME", value_enum)]
    presets: Vec<xtask::bench::BenchPreset>,
    /// Full epochs of the default preset's training runs (the median epoch is reported).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: u64,
    /// Training steps of 600 images of the conv and deep runs, on each side (one epoch cut short).
    #[arg(long, value_name = "N", default_value_t = xtask::bench::DEFAULT_STEPS as u64,
          value_parser = clap::value_parser!(u64).range(1..))]
    steps: u64,
    /// Directory with the MNIST IDX .gz files (a relative one is taken from the current directory)
    /// [default: $CAE_DATA_DIR/mnist, else ~/.cache/cae/mnist].
    #[arg(long, value_name = "DIR")]
    mnist_dir: Option<PathBuf>,
    /// Python with torch installed [default: $CAE_TORCH_PYTHON, else ~/torch-venv/bin/python if
    /// it imports torch].
    #[arg(long, value_name = "PATH")]
    torch_python: Option<PathBuf>,
    /// The PyTorch reference's directory.
    #[arg(long, value_name = "DIR", default_value = "../shared/peers/torch")]
    torch_dir: PathBuf,
    /// Leave PyTorch out even if it is installed.
    #[arg(long)]
    no_torch: bool,
    /// Skip the criterion micro-benchmarks of the default preset (only the training runs).
    #[arg(long)]
    skip_criterion: bool,
}

#[derive(Debug, Args)]
struct FetchWeightsArgs {
    /// Hugging Face Hub repository id (`owner/name`).
    #[arg(long, default_value = fetch::DEFAULT_REPO)]
    repo: String,
    /// Branch, tag or commit of the repository.
    #[arg(long, default_value = fetch::DEFAULT_REVISION)]
    revision: String,
    /// File to download from the repository.
    #[arg(long, default_value = fetch::DEFAULT_FILE)]
    file: String,
    /// Expected SHA-256 of the file [default: the sum pinned for <repo>/<file> in
    /// assets/pinned-weights.sha256; a file pinned there needs no flag].
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// Install a file that has no pinned sum and no --sha256 without verifying it.
    #[arg(long, conflicts_with = "sha256")]
    no_verify: bool,
    /// Where to install the file [default: $CAE_WEIGHTS_DIR/<file>, else
    /// ~/.local/share/cae/weights/<file> on Linux; cae-cli uses model.safetensors there].
    #[arg(long, value_name = "PATH")]
    dest: Option<PathBuf>,
    /// Hub endpoint, e.g. a mirror [default: $HF_ENDPOINT, else https://huggingface.co].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
}

#[derive(Debug, Args)]
struct PublishWeightsArgs {
    /// Run directory written by `cae-cli train` (config.json, metrics.csv, model.safetensors).
    run_dir: PathBuf,
    /// Directory to lay the repository out in (created if missing; existing files of the same
    /// names are kept unless --force).
    out_dir: PathBuf,
    /// Hub repository id the card names.
    #[arg(long, default_value = fetch::DEFAULT_REPO)]
    repo_id: String,
    /// Dataset to evaluate on and to name in the card: `mnist`, `fashion-mnist` or an IDX
    /// directory [default: the run's].
    #[arg(long)]
    dataset: Option<String>,
    /// Where datasets are cached [default: $CAE_DATA_DIR, else the per-user cache directory].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Never download the dataset.
    #[arg(long)]
    offline: bool,
    /// Skip the linear probes (no training set is read; the card has no probe accuracy).
    #[arg(long)]
    no_probe: bool,
    /// Replace files of the same names in OUT_DIR.
    #[arg(long)]
    force: bool,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::FetchWeights(args) => fetch_weights(args),
        Command::PublishWeights(args) => publish_weights(args),
        Command::Dist => {
            let archive = xtask::dist::dist(&xtask::workspace_root())?;
            println!("{}", archive.display());
            Ok(())
        }
        Command::Bench(args) => bench(args),
        Command::MeasureRss { report, command } => {
            let (code, kib) = xtask::bench::measure_rss(&command[0], &command[1..])?;
            std::fs::write(&report, kib.to_string())?;
            std::process::exit(code)
        }
    }
}

fn bench(args: BenchArgs) -> Result<()> {
    let root = xtask::workspace_root();
    // Where `cae-cli` caches MNIST: cae-data's data root ($CAE_DATA_DIR, else the user cache).
    let mnist_dir = args
        .mnist_dir
        .unwrap_or_else(|| cae_data::data_root(None).unwrap_or_default().join("mnist"));
    // Absolute from here on: the runs have other working directories (the criterion bench runs
    // in the workspace root, the PyTorch reference in its own).
    let mnist_dir = xtask::bench::resolve_mnist_dir(&mnist_dir)?;
    let torch_python = if args.no_torch {
        None
    } else {
        let candidate = args
            .torch_python
            .or_else(|| std::env::var_os("CAE_TORCH_PYTHON").map(PathBuf::from))
            .or_else(|| dirs::home_dir().map(|h| h.join("torch-venv/bin/python")));
        candidate.filter(|p| xtask::bench::python_with_torch(p))
    };
    let torch_dir = if args.torch_dir.is_absolute() {
        args.torch_dir
    } else {
        root.join(args.torch_dir)
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let report = xtask::bench::bench(
        &root,
        &xtask::bench::BenchOptions {
            presets: xtask::bench::presets_or_default(&args.presets),
            epochs: usize::try_from(args.epochs)?,
            steps: usize::try_from(args.steps)?,
            mnist_dir,
            torch_python,
            torch_dir,
            threads,
            skip_criterion: args.skip_criterion,
        },
    )?;
    print!("{}", xtask::bench::render(&report));
    Ok(())
}

fn fetch_weights(cli: FetchWeightsArgs) -> Result<()> {
    let sha256 = fetch::expected_sha256(
        &xtask::workspace_root().join(fetch::PINNED_SUMS_FILE),
        &cli.repo,
        &cli.file,
        cli.sha256.as_deref(),
        cli.no_verify,
    )?;
    if sha256.is_none() {
        eprintln!(
            "warning: --no-verify: {}/{} is installed without checking its SHA-256",
            cli.repo, cli.file
        );
    }
    let args = FetchArgs {
        repo: cli.repo,
        revision: cli.revision,
        file: cli.file,
        sha256,
        dest: cli.dest,
        endpoint: cli.endpoint,
        hf_cache_dir: None,
        progress: std::io::stderr().is_terminal(),
    };
    let installed = fetch::fetch_weights(&args)?;
    match &args.sha256 {
        Some(sum) => println!(
            "installed {} (SHA-256 {sum}, verified)",
            installed.display()
        ),
        None => println!("installed {} (not verified)", installed.display()),
    }
    if fetch::is_cae_cli_default(&installed) {
        println!(
            "cae-cli now uses it whenever no --weights is given (`cae-cli reconstruct --input digit.png -v` names the model it uses); --weights FILE still overrides it"
        );
    } else {
        println!(
            "use it with --weights: cae-cli reconstruct --input digit.png --weights {}",
            installed.display()
        );
    }
    Ok(())
}

fn publish_weights(args: PublishWeightsArgs) -> Result<()> {
    let published = xtask::publish::publish_weights(&xtask::publish::PublishOptions {
        run_dir: args.run_dir,
        out_dir: args.out_dir,
        repo_id: args.repo_id,
        dataset: args.dataset,
        data_dir: args.data_dir,
        offline: args.offline,
        probe: !args.no_probe,
        force: args.force,
    })?;
    for file in &published.files {
        println!("{}", file.display());
    }
    println!(
        "upload the directory as the model repository, e.g. `huggingface-cli upload {} {}`",
        published.repo_id,
        published.out_dir.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use xtask::bench::BenchPreset;

    fn bench_args(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        let cli = Cli::try_parse_from(["cargo xtask", "bench"].iter().chain(args))?;
        match cli.command {
            Command::Bench(b) => Ok(b),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn bench_presets_repeat_and_default_to_none_given() {
        let b = bench_args(&[]).unwrap();
        assert!(b.presets.is_empty());
        assert_eq!((b.epochs, b.steps), (3, 20));
        let b = bench_args(&[
            "--preset",
            "default",
            "--preset",
            "conv",
            "--preset",
            "deep",
            "--steps",
            "3",
            "--skip-criterion",
        ])
        .unwrap();
        assert_eq!(
            b.presets,
            [BenchPreset::Default, BenchPreset::Conv, BenchPreset::Deep]
        );
        assert_eq!(b.steps, 3);
        assert!(b.skip_criterion);
    }

    #[test]
    fn bench_rejects_unknown_presets_and_zero_work() {
        assert!(bench_args(&["--preset", "wide"]).is_err());
        assert!(bench_args(&["--steps", "0"]).is_err());
        assert!(bench_args(&["--epochs", "0"]).is_err());
    }
}
