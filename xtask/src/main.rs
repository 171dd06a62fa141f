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
    }
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
