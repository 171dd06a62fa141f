//! The figures `cargo xtask bench` reports for the default preset (784-1000-784, sigmoid, untied),
//! the architecture of the PyTorch reference's `rifai:1000`: one training step (forward, exact
//! penalty, backward) on a 600-sample batch, one 600×784 @ 784×1000 matmul (a step does five of
//! these, the two that involve the input skipping its zeros), and inference (encode + decode) of
//! the 10,000 test images. f32, CPU. The inputs are real MNIST images, because the products with
//! the input take time in proportion to its non-zeros: MNIST found as `cae-cli train` finds it
//! (`$CAE_DATA_DIR`, which `cargo xtask bench` sets from `--mnist-dir`, else the data cache),
//! downloaded on first use. Inference uses the model as loaded from a file. Before the matmul, 50
//! timed steps give the share of a step spent in its matrix products (`perf/product_share`).
use cae_core::sparse::{sparse_times_dense, Csr, Panels};
use cae_core::{CaeConfig, ContractiveAutoencoder, DEFAULT_PRESET};
use cae_data::{Dataset, DatasetSource, LoadOptions, Split, DATA_DIR_ENV};
use candle_core::{DType, Device, Tensor};
use criterion::{criterion_group, criterion_main, Criterion};
use std::time::Instant;

// The allocator `cae-cli` uses, so that these figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn mnist(split: Split) -> Dataset {
    Dataset::load(&DatasetSource::Mnist, split, &LoadOptions::default()).unwrap_or_else(|e| {
        panic!("{e:#}\n(set {DATA_DIR_ENV} to a directory holding the MNIST IDX files)")
    })
}

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
    let train = mnist(Split::Train);
    let test = mnist(Split::Test);
    let batch = train.to_tensor(0..600, &device).unwrap();
    let test_set = test.to_tensor(0..test.len(), &device).unwrap();
    let weights = Tensor::rand(-0.1f32, 0.1f32, (784, 1000), &device).unwrap();

    let mut group = c.benchmark_group("perf");
    group.sample_size(20);
    group.bench_function("train_step", |b| {
        b.iter(|| model.loss_and_gradients(&batch, 1e-4).unwrap())
    });
    product_share(&model, &batch);
    group.bench_function("matmul_600x784x1000", |b| {
        b.iter(|| batch.matmul(&weights).unwrap())
    });
    // The same product as the step does it with the input: non-zeros gathered, weights packed.
    let (x, w) = (
        batch.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        weights
            .t()
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap(),
    );
    group.bench_function("sparse_product_600x784x1000", |b| {
        b.iter(|| {
            let csr = Csr::from_dense(&x, 600, 784);
            let panels = Panels::from_transpose(&w, 1000, 784);
            let mut out = vec![0f32; 600 * 1000];
            sparse_times_dense(&mut out, &csr, &panels);
            out
        })
    });
    group.sample_size(10);
    group.bench_function("infer_10k", |b| {
        b.iter(|| loaded.reconstruct(&test_set).unwrap())
    });
    group.finish();
}

// A zero share from a build that does not count would be a wrong figure, not a missing one.
const _: () = assert!(
    cae_core::product_timing::ENABLED,
    "cae-core was built without its product-timing feature"
);

/// Where `product_share` writes its figures as JSON (`cargo xtask bench` sets it).
const PRODUCT_SHARE_FILE_ENV: &str = "CAE_BENCH_PRODUCT_SHARE_FILE";

/// The share of a training step spent in its matrix products, timed inside the same steps
/// (cae-core's `product-timing` feature, which this crate's dev-dependency turns on).
fn product_share(model: &ContractiveAutoencoder, batch: &Tensor) {
    const STEPS: u32 = 50;
    model.loss_and_gradients(batch, 1e-4).unwrap();
    cae_core::product_timing::take_nanos();
    let start = Instant::now();
    for _ in 0..STEPS {
        model.loss_and_gradients(batch, 1e-4).unwrap();
    }
    let step_seconds = start.elapsed().as_secs_f64() / f64::from(STEPS);
    let product_seconds = cae_core::product_timing::take_nanos() as f64 * 1e-9 / f64::from(STEPS);
    let share = product_seconds / step_seconds;
    println!(
        "perf/product_share: {share:.3} ({:.1} ms of products in a {:.1} ms step, mean of {STEPS})",
        product_seconds * 1e3,
        step_seconds * 1e3
    );
    if let Some(path) = std::env::var_os(PRODUCT_SHARE_FILE_ENV) {
        let json = serde_json::json!({
            "share": share,
            "product_seconds": product_seconds,
            "step_seconds": step_seconds,
            "steps": STEPS,
        });
        std::fs::write(&path, format!("{json}\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.to_string_lossy()));
    }
}

criterion_group!(benches, perf);
criterion_main!(benches);
