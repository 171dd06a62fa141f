//! How long loading and batching take.
//!
//! - `load_verify/mnist_train`: read, decompress, SHA-256-check and parse MNIST train from the
//!   `.gz` files in `$CAE_TEST_MNIST_DIR`, else `../shared/data/mnist` next to the workspace
//!   root; skipped when neither exists.
//! - `batcher/*`: one epoch of 600-sample batches over 60000 images (the real ones if
//!   available, else synthetic), reported in batches per second, to decide whether batch
//!   preparation needs a prefetch thread.

use std::path::PathBuf;
use std::time::Duration;

use cae_data::{Batcher, Dataset, DatasetSpec, LoadOptions, Split};
use candle_core::Device;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn mnist_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("CAE_TEST_MNIST_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist")
        });
    dir.is_dir().then_some(dir)
}

fn opts(dir: PathBuf) -> LoadOptions {
    LoadOptions {
        cache_dir: Some(dir),
        download: false,
        progress: false,
        ..LoadOptions::default()
    }
}

fn load(c: &mut Criterion) {
    let Some(dir) = mnist_dir() else {
        eprintln!("SKIPPED load_verify: no MNIST directory (set CAE_TEST_MNIST_DIR)");
        return;
    };
    let opts = opts(dir);
    let spec = DatasetSpec::mnist();
    let mut group = c.benchmark_group("load_verify");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("mnist_train", |b| {
        b.iter(|| Dataset::load_spec(&spec, Split::Train, &opts).unwrap())
    });
    group.bench_function("mnist_test", |b| {
        b.iter(|| Dataset::load_spec(&spec, Split::Test, &opts).unwrap())
    });
    group.finish();
}

fn batcher(c: &mut Criterion) {
    let train = match mnist_dir() {
        Some(dir) => Dataset::load_spec(&DatasetSpec::mnist(), Split::Train, &opts(dir)).unwrap(),
        None => {
            let n = 60_000;
            let images = (0..n * 784).map(|i| (i % 251) as u8).collect();
            let labels = (0..n).map(|i| (i % 10) as u8).collect();
            Dataset::from_raw(images, labels, 28, 28).unwrap()
        }
    };
    let device = Device::Cpu;
    let mut group = c.benchmark_group("batcher");
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(5));
    for (name, batcher) in [
        ("shuffled_600", Batcher::new(600).shuffle(1)),
        ("sequential_600", Batcher::new(600)),
    ] {
        group.throughput(Throughput::Elements(batcher.num_batches(train.len()) as u64));
        let mut epoch = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                epoch += 1;
                for batch in batcher.epoch(&train, epoch, &device) {
                    std::hint::black_box(batch.unwrap());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, load, batcher);
criterion_main!(benches);
