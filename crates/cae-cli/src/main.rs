//! `cae-cli`: train and use contractive autoencoders. A thin layer over the `cae-*` library crates.
mod data;
mod encode;
mod eval;
mod logging;
mod reconstruct;
mod train;
mod weights;

use clap::{Parser, Subcommand};

// A training step allocates and frees buffers of megabytes; the system allocator returns those to
// the kernel and faults them back in every step (a fifth of the epoch time on Linux), mimalloc
// keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cae-cli",
    version,
    about = "Contractive autoencoders (Rifai et al. 2011) on candle"
)]
struct Cli {
    /// Less output: warnings and errors only.
    #[arg(short, long, global = true)]
    quiet: bool,
    /// More output (-v: debug, -vv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Train a CAE (MNIST by default; downloads it on first use).
    Train(train::TrainArgs),
    /// List the model presets.
    Presets,
    /// Reconstruct your own digit images (PNG/JPEG) with a trained model (built-in by default).
    Reconstruct(reconstruct::ReconstructArgs),
    /// Encode digit images into the model's codes (JSON, CSV or NumPy .npy), for use as features.
    Encode(encode::EncodeArgs),
    /// Measure a trained model: reconstruction, contraction, Jacobian spectrum, linear-probe
    /// accuracy of its codes, tangents; several models side by side.
    Eval(eval::EvalArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    logging::init(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Train(args) => train::run(args, cli.quiet),
        Command::Reconstruct(args) => reconstruct::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Eval(args) => eval::run(args, cli.quiet),
        Command::Presets => {
            for (name, about) in cae_core::PRESETS {
                let mark = if name == cae_core::DEFAULT_PRESET {
                    " (default)"
                } else {
                    ""
                };
                println!("{name:<18} {about}{mark}");
            }
            Ok(())
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
