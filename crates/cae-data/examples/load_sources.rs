//! Loading and batching MNIST's 60,000 training images from each kind of source: the IDX files,
//! a folder of 60,000 PNG files (one subdirectory per class), and 60,000×784 `.npy` arrays of
//! `uint8` and of `float32`.
//!
//! ```text
//! cargo run --release -p cae-data --example load_sources [MNIST_DIR]
//! ```
//!
//! The PNG folder and the arrays are written from MNIST into a temporary directory first (not
//! timed). Each line prints the seconds to load, and to draw one shuffled epoch of 600-sample
//! `f32` batches. MNIST_DIR defaults to `$CAE_TEST_MNIST_DIR`, else `../shared/data/mnist`
//! beside the workspace.

use std::path::PathBuf;
use std::time::Instant;

use cae_data::{
    Batcher, Dataset, DatasetSource, DatasetSpec, ImageFolder, LoadOptions, NpyFiles, Split,
};
use candle_core::Device;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("CAE_TEST_MNIST_DIR").map(PathBuf::from))
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/mnist")
        });
    let opts = LoadOptions {
        cache_dir: Some(dir),
        download: false,
        progress: false,
        ..LoadOptions::default()
    };
    let mnist = Dataset::load_spec(&DatasetSpec::mnist(), Split::Train, &opts)?;
    let tmp = tempfile::tempdir()?;

    let started = Instant::now();
    let pngs = tmp.path().join("png");
    for class in 0..10 {
        std::fs::create_dir_all(pngs.join(class.to_string()))?;
    }
    for (i, (pixels, label)) in mnist.images().chunks(784).zip(mnist.labels()).enumerate() {
        image::GrayImage::from_raw(28, 28, pixels.to_vec())
            .ok_or("28×28 bytes")?
            .save(pngs.join(label.to_string()).join(format!("{i:05}.png")))?;
    }
    let npy_u8 = tmp.path().join("mnist-u8.npy");
    std::fs::write(&npy_u8, npy_bytes("|u1", mnist.images()))?;
    let floats: Vec<u8> = mnist
        .images()
        .iter()
        .flat_map(|&p| (f32::from(p) / 255.0).to_le_bytes())
        .collect();
    let npy_f32 = tmp.path().join("mnist-f32.npy");
    std::fs::write(&npy_f32, npy_bytes("<f4", &floats))?;
    drop(floats);
    println!(
        "fixtures written in {:.1} s (not counted below); {} hardware threads",
        started.elapsed().as_secs_f64(),
        available_threads()
    );

    println!(
        "{:<34} {:>8} {:>10} {:>12}",
        "source", "load s", "epoch s", "memory MB"
    );
    let sources: [(&str, DatasetSource); 4] = [
        ("IDX .gz (SHA-256 checked)", DatasetSource::Mnist),
        (
            "60,000 PNG files, 10 class dirs",
            DatasetSource::Images(ImageFolder::new(&pngs)),
        ),
        (
            "60,000×784 .npy uint8",
            DatasetSource::Npy(NpyFiles::new(&npy_u8)),
        ),
        (
            "60,000×784 .npy float32",
            DatasetSource::Npy(NpyFiles::new(&npy_f32)),
        ),
    ];
    for (name, source) in sources {
        let started = Instant::now();
        let data = Dataset::load(&source, Split::Train, &opts)?;
        let load = started.elapsed().as_secs_f64();
        assert_eq!((data.len(), data.image_dim()), (60_000, 784));
        let started = Instant::now();
        for batch in Batcher::new(600).shuffle(1).epoch(&data, 0, &Device::Cpu) {
            std::hint::black_box(batch?);
        }
        let epoch = started.elapsed().as_secs_f64();
        let mb = data.storage().bytes() as f64 / 1e6;
        println!("{name:<34} {load:>8.3} {epoch:>10.3} {mb:>12.1}");
    }
    Ok(())
}

/// A `.npy` file of shape 60000×784.
fn npy_bytes(descr: &str, body: &[u8]) -> Vec<u8> {
    let mut out = cae_data::encode_npy_header(descr, &[60_000, 784]);
    out.extend_from_slice(body);
    out
}

fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
