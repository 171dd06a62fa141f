//! `cae-cli`: train and use contractive autoencoders. A thin layer over the `cae-*` library crates.
mod classify;
mod data;
mod digits;
mod encode;
mod eval;
mod eval_classifier;
mod finetune;
mod logging;
mod outputs;
mod own_data;
mod per_sample;
mod presets;
mod progress;
mod reconstruct;
mod rows_out;
mod stack;
mod tabular;
mod train;
mod values;
mod weights;

use clap::{Parser, Subcommand};

// A training step allocates and frees buffers of megabytes; the system allocator returns those to
// the kernel and faults them back in every step (a fifth of the epoch time on Linux), mimalloc
// keeps and reuses them.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in mimalloc 3's option table; libmimalloc-sys
/// names only some options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for reuse instead of returning it to the kernel a second after it is freed.
/// A conv or deep training step frees and allocates tensors of tens of megabytes (candle's
/// backward pass allocates a fresh gradient buffer per node); returned pages come back as zeroed
/// transparent huge pages, and that zeroing took 20–37% of a step in `perf` profiles of
/// `--preset conv` and `--preset deep` (a step 10–30% faster without it). Peak memory is unchanged:
/// what is kept is what the step needs again.
fn keep_freed_memory() {
    // SAFETY: sets a plain integer option before any thread is started; mimalloc reads it when it
    // next decides whether to purge.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Runs candle's element-wise operations on the calling thread, unless `CANDLE_NUM_THREADS` is
/// already set. candle 0.11 spreads them over a pool of its own threads beside rayon's (which run
/// the matrix products and this project's kernels), and the caller waits for every one of that
/// pool's threads to report, even one the kernel has not scheduled yet: on the 2-core machines
/// this project is measured on, with other work running, a `--preset deep` step took 0.98–1.21 s
/// with the pool and 0.56–0.58 s without it (8-step runs alternating, same binary).
fn elementwise_ops_on_the_calling_thread() {
    if std::env::var_os("CANDLE_NUM_THREADS").is_none() {
        // Before any thread is started (candle reads the variable when it first builds its pool).
        std::env::set_var("CANDLE_NUM_THREADS", "1");
    }
}

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
    /// List the model presets (with --dataset: which fit that data, and why not).
    Presets(presets::PresetsArgs),
    /// Reconstruct your own digit images (PNG/JPEG) with a trained model (built-in by default).
    Reconstruct(reconstruct::ReconstructArgs),
    /// Encode digit images, or the rows of a .npy or CSV file, into the model's codes (JSON, CSV or
    /// NumPy .npy), for use as features; --scores adds per-sample anomaly scores.
    Encode(encode::EncodeArgs),
    /// Measure a trained model: reconstruction, contraction, Jacobian spectrum, linear-probe
    /// accuracy of its codes, tangents; several models side by side.
    Eval(eval::EvalArgs),
    /// Fine-tune a pretrained CAE's encoder plus a softmax layer on the labels (a classifier;
    /// with --tangent-prop the Manifold Tangent Classifier).
    Finetune(finetune::FinetuneArgs),
    /// Print the digit a fine-tuned classifier sees in each image, with its probabilities.
    Classify(classify::ClassifyArgs),
}

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    elementwise_ops_on_the_calling_thread();
    // Products with a trained encoder's subnormal weights are otherwise ~20× slower (see
    // cae_core::flush_subnormals); the figures do not change.
    cae_core::flush_subnormals();
    let cli = Cli::parse();
    logging::init(cli.quiet, cli.verbose);
    let result = match cli.command {
        Command::Train(args) => train::run(args, cli.quiet),
        Command::Reconstruct(args) => reconstruct::run(args),
        Command::Encode(args) => encode::run(args),
        Command::Eval(args) => eval::run(args, cli.quiet),
        Command::Finetune(args) => finetune::run(args, cli.quiet),
        Command::Classify(args) => classify::run(args),
        Command::Presets(args) => presets::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
