//! How noisy the Hutchinson penalty is at 1, 2 and 4 probes, on the conv preset and real MNIST
//! images, so that users can choose `probes`.
//!
//! For a batch of test images it computes the exact per-sample `‖J‖²_F` (one tangent per input
//! pixel), then draws the Hutchinson estimate many times and reports, for each probe count, the
//! mean and standard deviation of the batch-mean estimate (the figure the loss sees), the mean
//! per-sample relative standard deviation, and the closed-form per-sample variance of the
//! Rademacher estimator, `2(‖JᵀJ‖²_F − Σ_i (JᵀJ)²_ii) / probes`, as an independent check.
//!
//! ```text
//! cargo run --release -p cae-train --example hutchinson_variance -- MNIST_DIR [MODEL_FILE] [IMAGES] [DRAWS]
//! ```
//! Without `MODEL_FILE`, a freshly initialised conv preset (seed 42).
use cae_core::{CaeConfig, ContractiveAutoencoder, PenaltyMethod};
use cae_data::{Dataset, Split};
use candle_core::{DType, Device, Tensor};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(mnist_dir) = args.first() else {
        anyhow::bail!("usage: hutchinson_variance MNIST_DIR [MODEL_FILE] [IMAGES] [DRAWS]");
    };
    let count = |i: usize, what: &str, default: usize| -> anyhow::Result<usize> {
        match args.get(i) {
            None => Ok(default),
            Some(s) => s
                .parse()
                .map_err(|_| anyhow::anyhow!("{what} must be a whole number, got `{s}`")),
        }
    };
    let images = count(2, "IMAGES", 64)?;
    let draws = count(3, "DRAWS", 200)?;
    anyhow::ensure!(images > 0, "IMAGES must be at least 1");
    anyhow::ensure!(
        draws >= 2,
        "DRAWS must be at least 2 (a variance needs two draws)"
    );
    let device = Device::Cpu;
    let (config, tensors) = match args.get(1).filter(|s| !s.is_empty()) {
        Some(file) => {
            let loaded = cae_core::read_model(file.as_ref(), &device)?;
            (loaded.config, loaded.tensors)
        }
        None => {
            let config = CaeConfig::preset("conv")?;
            let (_, varmap) = ContractiveAutoencoder::init(&config, 42, DType::F32, &device)?;
            let tensors = varmap
                .data()
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().clone()))
                .collect();
            (config, tensors)
        }
    };
    let model_with = |penalty| -> anyhow::Result<ContractiveAutoencoder> {
        let config = CaeConfig {
            penalty,
            ..config.clone()
        };
        let vb = candle_nn::VarBuilder::from_tensors(tensors.clone(), DType::F32, &device);
        Ok(ContractiveAutoencoder::new(&config, vb)?)
    };
    let test = Dataset::load_dir(mnist_dir.as_ref(), Split::Test)?;
    let x = test.to_tensor(0..images.min(test.len()), &device)?;

    let exact_model = model_with(PenaltyMethod::Exact)?;
    let jac = exact_model.jacobian(&x)?; // [B, C, D]
    let exact: Vec<f64> = jac.sqr()?.sum((1, 2))?.to_dtype(DType::F64)?.to_vec1()?;
    // Closed-form variance of one Rademacher probe: 2(‖A‖²_F − Σ_i A_ii²) with A = JᵀJ.
    let a = jac.t()?.matmul(&jac)?.to_dtype(DType::F64)?; // [B, D, D]
    let a_sq: Vec<f64> = a.sqr()?.sum((1, 2))?.to_vec1()?;
    let diag_sq: Vec<f64> = a
        .broadcast_mul(&Tensor::eye(x.dim(1)?, DType::F64, &device)?.unsqueeze(0)?)?
        .sqr()?
        .sum((1, 2))?
        .to_vec1()?;
    let one_probe_var: Vec<f64> = a_sq
        .iter()
        .zip(&diag_sq)
        .map(|(a, d)| 2.0 * (a - d))
        .collect();
    let n = exact.len() as f64;
    let exact_mean = exact.iter().sum::<f64>() / n;
    println!(
        "{} MNIST test images, {draws} draws per probe count; exact mean ‖J‖²_F {exact_mean:.6}",
        exact.len()
    );
    println!(
        "{:>6} {:>14} {:>14} {:>12} {:>16} {:>16}",
        "probes", "mean estimate", "std of mean", "rel std", "sample rel std", "closed form"
    );
    for probes in [1usize, 2, 4] {
        let model = model_with(PenaltyMethod::Hutchinson { probes })?;
        model.set_probe_seed(probes as u64);
        let mut batch_means = Vec::with_capacity(draws);
        let mut sample_sq_dev = vec![0.0; exact.len()];
        for _ in 0..draws {
            let est: Vec<f64> = model
                .jacobian_sq_norm(&x)?
                .to_dtype(DType::F64)?
                .to_vec1()?;
            batch_means.push(est.iter().sum::<f64>() / n);
            for (acc, (e, t)) in sample_sq_dev.iter_mut().zip(est.iter().zip(&exact)) {
                *acc += (e - t).powi(2);
            }
        }
        let mean = batch_means.iter().sum::<f64>() / draws as f64;
        let var = batch_means.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
        let sample_rel = sample_sq_dev
            .iter()
            .zip(&exact)
            .map(|(sq, t)| (sq / draws as f64).sqrt() / t)
            .sum::<f64>()
            / n;
        let closed_rel = one_probe_var
            .iter()
            .zip(&exact)
            .map(|(v, t)| (v / probes as f64).sqrt() / t)
            .sum::<f64>()
            / n;
        println!(
            "{probes:>6} {mean:>14.6} {:>14.6} {:>12.4} {sample_rel:>16.4} {closed_rel:>16.4}",
            var.sqrt(),
            var.sqrt() / exact_mean
        );
    }
    Ok(())
}
