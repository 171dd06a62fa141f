//! The figures `cargo xtask bench` reports for the default preset (784-1000-784, sigmoid, untied),
//! the architecture of the PyTorch reference's `rifai:1000`: one training step (forward, exact
//! penalty, backward) on a 600-sample batch, one 600×784 @ 784×1000 matmul (a step does five of
//! these), and inference (encode + decode) of 10,000 images. f32, CPU. Timing does not depend on
//! the pixel values, so inputs are uniform noise. Inference uses the model as loaded from a file.
use cae_core::{CaeConfig, ContractiveAutoencoder, DEFAULT_PRESET};
use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};

// The allocator `cae-cli` uses, so that these figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn perf(c: &mut Criterion) {
    let device = Device::Cpu;
    let config = CaeConfig::preset(DEFAULT_PRESET).unwrap();
    let (model, varmap) = ContractiveAutoencoder::init(&config, 0, DType::F32, &device).unwrap();
    // Inference runs on a model loaded from a file, as `cae-cli` does: plain tensors, no variables.
    let bytes = cae_core::model_to_bytes(&config, &varmap, &Default::default()).unwrap();
    let loaded = cae_core::model_from_bytes(&bytes, "perf".as_ref(), &device)
        .unwrap()
        .model(DType::F32, &device)
        .unwrap();
    let batch = Tensor::rand(0f32, 1f32, (600, 784), &device).unwrap();
    let test_set = Tensor::rand(0f32, 1f32, (10_000, 784), &device).unwrap();
    let weights = Tensor::rand(-0.1f32, 0.1f32, (784, 1000), &device).unwrap();

    let mut group = c.benchmark_group("perf");
    group.sample_size(20);
    group.bench_function("train_step", |b| {
        b.iter(|| model.loss_and_gradients(&batch, 1e-4).unwrap())
    });
    group.bench_function("matmul_600x784x1000", |b| {
        b.iter(|| batch.matmul(&weights).unwrap())
    });
    group.sample_size(10);
    group.bench_function("infer_10k", |b| {
        b.iter(|| loaded.reconstruct(&test_set).unwrap())
    });
    group.finish();
}

criterion_group!(benches, perf);
criterion_main!(benches);
