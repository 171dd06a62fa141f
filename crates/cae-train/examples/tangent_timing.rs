//! How long the Manifold Tangent Classifier's tangent stage takes: the `k` leading right singular
//! vectors of the encoder's Jacobian at N MNIST training images, in batches as fine-tuning finds
//! them, with the time per 1,000 points and the projected time for 50,000.
//!
//! ```text
//! cargo run --release -p cae-train --example tangent_timing -- MNIST_DIR MODEL_FILE [POINTS] [K] [ITERATIONS]
//! ```
use std::time::Instant;

use cae_core::ContractiveAutoencoder;
use cae_data::{Dataset, Split};
use candle_core::{DType, Device};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mnist_dir), Some(model_file)) = (args.first(), args.get(1)) else {
        anyhow::bail!("usage: tangent_timing MNIST_DIR MODEL_FILE [POINTS] [K] [ITERATIONS]");
    };
    let number = |i: usize, default: usize| -> anyhow::Result<usize> {
        Ok(args
            .get(i)
            .map(|s| s.parse())
            .transpose()?
            .unwrap_or(default))
    };
    let (points, k, iterations) = (number(2, 2000)?, number(3, 10)?, number(4, 10)?);
    // As cae-cli does; CAE_KEEP_SUBNORMALS=1 measures without it.
    let flushing =
        std::env::var_os("CAE_KEEP_SUBNORMALS").is_none() && cae_core::flush_subnormals();
    println!("subnormals flushed to zero: {flushing}");
    let device = Device::Cpu;
    let model = ContractiveAutoencoder::load(model_file.as_ref(), DType::F32, &device)?;
    let train = Dataset::load_dir(mnist_dir.as_ref(), Split::Train)?;
    let points = points.min(train.len());
    let batch = 500;
    let started = Instant::now();
    for start in (0..points).step_by(batch) {
        let x = train.to_tensor(start..(start + batch).min(points), &device)?;
        let basis = model.tangent_basis(&x, k, iterations, start as u64)?;
        std::hint::black_box(basis);
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{points} points, k {k}, {iterations} iterations: {seconds:.2} s ({:.2} s per 1,000 points; 50,000 points ≈ {:.0} s)",
        1000.0 * seconds / points as f64,
        50_000.0 * seconds / points as f64
    );
    Ok(())
}
