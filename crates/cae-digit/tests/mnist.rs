//! cae-digit against MNIST itself (the directory named by `CAE_TEST_MNIST_DIR`; without it each
//! test prints SKIPPED and returns, having checked nothing): the placement constants are MNIST's
//! own statistics, and an MNIST digit saved as a PNG comes back exactly as the dataset holds it.

use std::io::Cursor;
use std::path::PathBuf;

use cae_data::{Dataset, Split};
use cae_digit::{centre_of_mass, digit_from_bytes, DigitLimits, SIDE};
use image::{GrayImage, ImageFormat};

fn mnist(split: Split) -> Option<Dataset> {
    let Some(dir) = std::env::var_os("CAE_TEST_MNIST_DIR").filter(|d| !d.is_empty()) else {
        eprintln!("SKIPPED: set CAE_TEST_MNIST_DIR to the MNIST directory to run this test");
        return None;
    };
    Some(Dataset::load_dir(&PathBuf::from(dir), split).unwrap())
}

fn unit_pixels(data: &Dataset, i: usize) -> Vec<f32> {
    data.image(i)
        .iter()
        .map(|&p| f32::from(p) / 255.0)
        .collect()
}

/// The figures quoted in `cae_digit::placement`'s docs, measured in the crate's own convention.
#[test]
fn measured_mnist_placement() {
    let (Some(test), Some(train)) = (mnist(Split::Test), mnist(Split::Train)) else {
        return;
    };
    for (data, mean) in [(&test, (14.508, 14.493)), (&train, (14.507, 14.496))] {
        let (mut sum_x, mut sum_y) = (0.0, 0.0);
        let (mut min, mut max) = ((f64::MAX, f64::MAX), (f64::MIN, f64::MIN));
        for i in 0..data.len() {
            let (x, y) = centre_of_mass(&unit_pixels(data, i), SIDE).unwrap();
            (sum_x, sum_y) = (sum_x + x, sum_y + y);
            min = (min.0.min(x), min.1.min(y));
            max = (max.0.max(x), max.1.max(y));
        }
        let n = data.len() as f64;
        let measured = (sum_x / n, sum_y / n);
        assert!(
            (measured.0 - mean.0).abs() < 5e-4 && (measured.1 - mean.1).abs() < 5e-4,
            "mean centre of mass {measured:?}, documented {mean:?}"
        );
        // Every digit's centre of mass lies in the pixel (14, 14), give or take 0.02 px.
        assert!(min.0 >= 13.98 && min.1 >= 13.98, "{min:?}");
        assert!(max.0 <= 15.0 && max.1 <= 15.0, "{max:?}");
    }
}

/// Every test digit written as an 8-bit greyscale PNG and read back gives the dataset's pixels
/// bit for bit (the model-level check, codes to 1e-6, is cae-cli's `encode` test).
#[test]
fn mnist_test_digits_saved_as_png_pass_through_unchanged() {
    let Some(test) = mnist(Split::Test) else {
        return;
    };
    let mut changed = Vec::new();
    for i in 0..test.len() {
        let image = GrayImage::from_raw(28, 28, test.image(i).to_vec()).unwrap();
        let mut png = Vec::new();
        image
            .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
            .unwrap();
        let digit = digit_from_bytes(&png, "mnist.png", &DigitLimits::default()).unwrap();
        assert!(!digit.inverted);
        if digit.pixels != unit_pixels(&test, i) {
            changed.push(i);
        }
    }
    assert!(changed.is_empty(), "changed test digits: {changed:?}");
}
