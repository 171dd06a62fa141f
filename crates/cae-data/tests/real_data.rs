//! The full real datasets, from the directories named by `CAE_TEST_MNIST_DIR` and
//! `CAE_TEST_FASHION_MNIST_DIR` (CI points them at a local copy). Without the variable a test
//! prints that it is skipped and returns: it has then checked nothing.

use std::path::PathBuf;

use cae_data::{Batcher, Dataset, DatasetSpec, LoadOptions, Split};
use candle_core::Device;

fn dir_from_env(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => {
            eprintln!("SKIPPED: {var} is not set, so the real-data test did not run");
            None
        }
    }
}

/// Loads both splits through the named-dataset path (checksums verified, downloading off).
fn check_full(spec: DatasetSpec, dir: PathBuf) {
    let opts = LoadOptions {
        cache_dir: Some(dir),
        download: false,
        progress: false,
        ..LoadOptions::default()
    };
    for (split, n) in [(Split::Train, 60_000), (Split::Test, 10_000)] {
        let data = Dataset::load_spec(&spec, split, &opts)
            .unwrap_or_else(|e| panic!("{} {split}: {e}", spec.name));
        assert_eq!((data.len(), data.rows(), data.cols()), (n, 28, 28));
        assert_eq!(data.images().len(), n * 784);
        assert!(data.labels().iter().all(|&l| l <= 9));
        assert_eq!(data.num_classes(), 10);
        // Every class is present, roughly balanced (each is 8–12% of both MNIST splits).
        let mut counts = [0usize; 10];
        for &l in data.labels() {
            counts[l as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > n / 20), "{counts:?}");
    }
}

#[test]
fn real_mnist() {
    let Some(dir) = dir_from_env("CAE_TEST_MNIST_DIR") else {
        return;
    };
    check_full(DatasetSpec::mnist(), dir.clone());

    // Batching the real thing: 100 full batches of [600, 784] in [0, 1].
    let opts = LoadOptions {
        cache_dir: Some(dir),
        download: false,
        progress: false,
        ..LoadOptions::default()
    };
    let train = Dataset::load(&cae_data::DatasetSource::Mnist, Split::Train, &opts).unwrap();
    let batcher = Batcher::default().shuffle(0);
    assert_eq!(batcher.num_batches(train.len()), 100);
    let first = batcher
        .epoch(&train, 0, &Device::Cpu)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(first.images.dims(), &[600, 784]);
    let max = first.images.max_all().unwrap().to_scalar::<f32>().unwrap();
    let min = first.images.min_all().unwrap().to_scalar::<f32>().unwrap();
    assert_eq!((min, max), (0.0, 1.0));
}

#[test]
fn real_fashion_mnist() {
    let Some(dir) = dir_from_env("CAE_TEST_FASHION_MNIST_DIR") else {
        return;
    };
    check_full(DatasetSpec::fashion_mnist(), dir);
}
