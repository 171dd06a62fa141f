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
    /// Download trained weights into the place `cae-cli` looks by default.
    FetchWeights(FetchWeightsArgs),
    /// Build `cae-cli` with the dist profile and package it under target/dist/.
    Dist,
    /// Measure training and inference speed and memory of the default preset, beside the
    /// PyTorch reference when it is installed (report in target/bench/report.json).
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
    /// Epochs of the real training runs (the median epoch is reported).
    #[arg(long, default_value_t = 3)]
    epochs: usize,
    /// Directory with the MNIST IDX .gz files [default: $CAE_DATA_DIR/mnist, else ~/.cache/cae/mnist].
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
    /// Skip the criterion micro-benchmarks (only the training runs).
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
    /// Expected SHA-256 of the file [default: the sum pinned in assets/default-model.sha256].
    #[arg(long, value_name = "HEX")]
    sha256: Option<String>,
    /// Where to install the file [default: <data dir>/cae/weights/<file>].
    #[arg(long, value_name = "PATH")]
    dest: Option<PathBuf>,
    /// Hub endpoint, e.g. a mirror [default: $HF_ENDPOINT, else https://huggingface.co].
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::FetchWeights(args) => fetch_weights(args),
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
    let mnist_dir = args.mnist_dir.unwrap_or_else(|| {
        std::env::var_os("CAE_DATA_DIR")
            .map(PathBuf::from)
            .or_else(|| dirs::cache_dir().map(|d| d.join("cae")))
            .unwrap_or_default()
            .join("mnist")
    });
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
            epochs: args.epochs,
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
    let sha256 = match cli.sha256 {
        Some(sum) => Some(sum),
        None => {
            let pinned = xtask::workspace_root().join(fetch::PINNED_SUMS_FILE);
            fetch::pinned_sha256(&pinned, &cli.file)?
        }
    };
    if sha256.is_none() {
        eprintln!(
            "warning: no SHA-256 given or pinned for {}; the download will not be verified",
            cli.file
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
    println!("{}", installed.display());
    Ok(())
}
