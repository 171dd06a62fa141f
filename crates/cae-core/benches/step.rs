//! One training step (forward + penalty + backward) for each preset, and the penalty alone relative to the
//! reconstruction forward pass. Batch 600 of 28×28 inputs, f32, CPU. The inputs are uniform noise,
//! with no zeros, so the one-layer presets take their dense products here; `cargo xtask bench`
//! measures the default preset on real MNIST, where the input products skip the zeros.
use cae_core::{CaeConfig, ContractiveAutoencoder, Kernels, PRESETS};
use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};

fn batch() -> Tensor {
    Tensor::rand(0f32, 1f32, (600, 784), &Device::Cpu).unwrap()
}

fn training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("train_step_batch600");
    group.sample_size(10);
    let x = batch();
    for (name, _) in PRESETS {
        let config = CaeConfig::preset(name).unwrap();
        let (model, _) =
            ContractiveAutoencoder::init(&config, 0, DType::F32, &Device::Cpu).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| model.loss_and_gradients(&x, 1e-4).unwrap())
        });
        if name == "rifai2011-untied" {
            // candle's ops only: the step goes through autograd instead of the fused kernel.
            let autograd = model.with_kernels(Kernels::CandleOnly);
            group.bench_function(format!("{name}/autograd"), |b| {
                b.iter(|| autograd.loss_and_gradients(&x, 1e-4).unwrap())
            });
        }
    }
    group.finish();
}

fn penalty_vs_forward(c: &mut Criterion) {
    let mut group = c.benchmark_group("penalty_vs_forward_batch600");
    group.sample_size(10);
    let x = batch();
    for name in ["rifai2011-untied", "deep", "conv"] {
        let config = CaeConfig::preset(name).unwrap();
        let (model, _) =
            ContractiveAutoencoder::init(&config, 0, DType::F32, &Device::Cpu).unwrap();
        group.bench_function(format!("{name}/reconstruct"), |b| {
            b.iter(|| model.reconstruct(&x).unwrap())
        });
        group.bench_function(format!("{name}/penalty"), |b| {
            b.iter(|| model.jacobian_sq_norm(&x).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, training_step, penalty_vs_forward);
criterion_main!(benches);
