//! End-to-end tests: images are generated here, encoded as users' files would be, and decoded
//! by the crate. Nothing is read from disk except the files these tests write.

use std::io::Cursor;
use std::time::{Duration, Instant};

use cae_digit::{
    centre_of_mass, digit_from_bytes, load_digit, Digit, DigitError, DigitLimits,
    MNIST_CENTRE_OF_MASS, PIXELS, SIDE,
};
use image::{DynamicImage, GrayImage, ImageBuffer, ImageFormat, Luma, Rgb, Rgba};

/// Ink mask of a thick, asymmetric "7" drawn in a `size`×`size` square whose top-left corner is
/// at `(left, top)` of a `width`×`height` canvas. Asymmetric on purpose, so that centring by
/// mass differs from centring the bounding box.
fn seven_mask(width: u32, height: u32, left: u32, top: u32, size: u32) -> Vec<bool> {
    let stroke = (size / 6).max(2) as f32;
    let mut mask = vec![false; (width * height) as usize];
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f32 - left as f32, y as f32 - top as f32);
            let s = size as f32;
            if !(0.0..s).contains(&u) || !(0.0..s).contains(&v) {
                continue;
            }
            let top_bar = v < stroke;
            // Diagonal from the top-right corner down to the bottom, a third of the way in.
            let diagonal_x = s - stroke - (v / s) * (s * 0.55);
            let diagonal = (u - diagonal_x).abs() < stroke / 2.0 + 0.5;
            mask[(y * width + x) as usize] = top_bar || diagonal;
        }
    }
    mask
}

/// Dark ink (`ink`) on light paper (`paper`), as a phone photo or a drawing program gives.
fn gray_digit(
    width: u32,
    height: u32,
    left: u32,
    top: u32,
    size: u32,
    ink: u8,
    paper: u8,
) -> GrayImage {
    let mask = seven_mask(width, height, left, top, size);
    GrayImage::from_fn(width, height, |x, y| {
        Luma([if mask[(y * width + x) as usize] {
            ink
        } else {
            paper
        }])
    })
}

fn standard_gray() -> GrayImage {
    gray_digit(64, 64, 16, 12, 36, 0, 255)
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut bytes), format)
        .unwrap();
    bytes
}

fn decode(bytes: &[u8]) -> Digit {
    digit_from_bytes(bytes, "digit.png", &DigitLimits::default()).unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

fn mean_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>() / a.len() as f32
}

/// Width and height of the box around every non-zero pixel.
fn ink_extent(pixels: &[f32]) -> (usize, usize) {
    let ink: Vec<(usize, usize)> = (0..PIXELS)
        .filter(|&i| pixels[i] > 0.0)
        .map(|i| (i % SIDE, i / SIDE))
        .collect();
    let (xs, ys): (Vec<usize>, Vec<usize>) = ink.into_iter().unzip();
    (
        xs.iter().max().unwrap() - xs.iter().min().unwrap() + 1,
        ys.iter().max().unwrap() - ys.iter().min().unwrap() + 1,
    )
}

/// The properties every output must have, whatever the input.
fn assert_mnist_like(digit: &Digit) {
    assert_eq!(digit.pixels.len(), PIXELS);
    assert!(digit.pixels.iter().all(|v| (0.0..=1.0).contains(v)));
    let peak = digit.pixels.iter().copied().fold(0.0, f32::max);
    assert!(peak > 0.9, "the strongest ink should be near 1, got {peak}");
    let corner_background = [0, SIDE - 1, PIXELS - SIDE, PIXELS - 1];
    assert!(corner_background.iter().all(|&i| digit.pixels[i] == 0.0));
    // Where MNIST puts it: within half a pixel (the most whole-pixel shifts allow) of (14.5, 14.5).
    let (cx, cy) = centre_of_mass(&digit.pixels, SIDE).unwrap();
    let (tx, ty) = MNIST_CENTRE_OF_MASS;
    assert!(
        (cx - tx).abs() <= 0.5 + 1e-6 && (cy - ty).abs() <= 0.5 + 1e-6,
        "centre of mass ({cx}, {cy}) should be within half a pixel of ({tx}, {ty})"
    );
    let (w, h) = ink_extent(&digit.pixels);
    assert!(w <= 20 && h <= 20, "ink box {w}x{h} should fit 20x20");
    assert!(
        w >= 19 || h >= 19,
        "the longer side should fill the 20 px box, got {w}x{h}"
    );
}

#[test]
fn gray_png_is_inverted_centred_and_fits_the_box() {
    let bytes = encode(&DynamicImage::ImageLuma8(standard_gray()), ImageFormat::Png);
    let digit = decode(&bytes);
    assert_mnist_like(&digit);
    assert!(digit.inverted, "dark ink on white paper must be inverted");
    assert_eq!(digit.original_size, (64, 64));
}

#[test]
fn rgb_png_matches_gray() {
    let gray = standard_gray();
    let rgb = ImageBuffer::from_fn(64, 64, |x, y| {
        let v = gray.get_pixel(x, y).0[0];
        Rgb([v, v, v])
    });
    let reference = decode(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png));
    let digit = decode(&encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Png));
    assert_mnist_like(&digit);
    assert!(max_abs_diff(&digit.pixels, &reference.pixels) < 1e-3);
}

#[test]
fn rgba_png_with_transparent_background_uses_the_opaque_strokes_as_ink() {
    // Transparent *black* background under black ink: ignoring alpha would see no ink at all.
    let mask = seven_mask(64, 64, 16, 12, 36);
    let rgba = ImageBuffer::from_fn(64, 64, |x, y| {
        let alpha = if mask[(y * 64 + x) as usize] { 255 } else { 0 };
        Rgba([0, 0, 0, alpha])
    });
    let reference = decode(&encode(
        &DynamicImage::ImageLuma8(standard_gray()),
        ImageFormat::Png,
    ));
    let digit = decode(&encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png));
    assert_mnist_like(&digit);
    assert!(digit.inverted);
    assert!(max_abs_diff(&digit.pixels, &reference.pixels) < 1e-3);
}

#[test]
fn rgba_png_with_white_strokes_on_transparent_background() {
    let mask = seven_mask(64, 64, 16, 12, 36);
    let rgba = ImageBuffer::from_fn(64, 64, |x, y| {
        let alpha = if mask[(y * 64 + x) as usize] { 255 } else { 0 };
        Rgba([255, 255, 255, alpha])
    });
    let reference = decode(&encode(
        &DynamicImage::ImageLuma8(standard_gray()),
        ImageFormat::Png,
    ));
    let digit = decode(&encode(&DynamicImage::ImageRgba8(rgba), ImageFormat::Png));
    assert!(!digit.inverted);
    assert!(max_abs_diff(&digit.pixels, &reference.pixels) < 1e-3);
}

#[test]
fn sixteen_bit_png_matches_eight_bit() {
    let gray = standard_gray();
    let gray16: ImageBuffer<Luma<u16>, Vec<u16>> = ImageBuffer::from_fn(64, 64, |x, y| {
        Luma([u16::from(gray.get_pixel(x, y).0[0]) * 257])
    });
    let reference = decode(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png));
    let digit = decode(&encode(
        &DynamicImage::ImageLuma16(gray16),
        ImageFormat::Png,
    ));
    assert_mnist_like(&digit);
    assert!(max_abs_diff(&digit.pixels, &reference.pixels) < 1e-3);
}

#[test]
fn palette_png_matches_gray() {
    // `image` cannot write indexed PNGs, so write one with `png` directly: blue ink on off-white.
    let gray = standard_gray();
    let indices: Vec<u8> = gray.pixels().map(|p| u8::from(p.0[0] == 255)).collect();
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 64, 64);
        encoder.set_color(png::ColorType::Indexed);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_palette(vec![20, 30, 160, 250, 248, 240]);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&indices).unwrap();
    }
    let reference = decode(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png));
    let digit = decode(&bytes);
    assert_mnist_like(&digit);
    assert!(max_abs_diff(&digit.pixels, &reference.pixels) < 1e-3);
}

#[test]
fn jpeg_is_close_to_the_lossless_result() {
    let gray = standard_gray();
    let rgb = DynamicImage::ImageLuma8(gray.clone()).to_rgb8();
    let reference = decode(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png));
    let digit = decode(&encode(&DynamicImage::ImageRgb8(rgb), ImageFormat::Jpeg));
    assert_mnist_like(&digit);
    assert!(digit.inverted);
    let diff = mean_abs_diff(&digit.pixels, &reference.pixels);
    assert!(
        diff < 0.05,
        "JPEG result differs from PNG by {diff} on average"
    );
}

#[test]
fn large_off_centre_digit_on_grey_paper_is_cropped_scaled_and_centred() {
    // A 300x200 photo: the digit sits in the bottom-right corner, ink and paper both grey.
    let gray = gray_digit(300, 200, 190, 90, 100, 40, 210);
    let digit = decode(&encode(&DynamicImage::ImageLuma8(gray), ImageFormat::Png));
    assert_mnist_like(&digit);
    assert!(digit.inverted);
    assert_eq!(digit.original_size, (300, 200));
}

#[test]
fn white_on_black_and_black_on_white_give_the_same_digit() {
    let black_on_white = gray_digit(120, 90, 30, 20, 50, 0, 255);
    let white_on_black = gray_digit(120, 90, 30, 20, 50, 255, 0);
    let a = decode(&encode(
        &DynamicImage::ImageLuma8(black_on_white),
        ImageFormat::Png,
    ));
    let b = decode(&encode(
        &DynamicImage::ImageLuma8(white_on_black),
        ImageFormat::Png,
    ));
    assert!(a.inverted && !b.inverted);
    assert_mnist_like(&b);
    assert!(max_abs_diff(&a.pixels, &b.pixels) < 1e-3);
}

#[test]
fn load_digit_reads_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seven.png");
    DynamicImage::ImageLuma8(standard_gray())
        .save(&path)
        .unwrap();
    let digit = load_digit(&path, &DigitLimits::default()).unwrap();
    assert_mnist_like(&digit);
}

// ---- bad input: a typed error that names the file, never a panic ----

fn error_for(bytes: &[u8]) -> DigitError {
    digit_from_bytes(bytes, "users-digit.png", &DigitLimits::default()).unwrap_err()
}

fn assert_names_file(error: &DigitError) {
    let message = error.to_string();
    assert!(
        message.contains("users-digit.png"),
        "{message:?} should name the file"
    );
}

#[test]
fn empty_input_is_rejected() {
    let error = error_for(&[]);
    assert!(matches!(error, DigitError::Empty { .. }), "{error:?}");
    assert_names_file(&error);
}

#[test]
fn random_bytes_are_not_an_image() {
    // A fixed xorshift stream: arbitrary but reproducible.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let bytes: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let error = error_for(&bytes);
    assert!(
        matches!(error, DigitError::UnknownFormat { .. }),
        "{error:?}"
    );
    assert_names_file(&error);
}

#[test]
fn truncated_png_is_corrupt() {
    // Noise compresses badly, so cutting the file in half really cuts the image data.
    let noisy = GrayImage::from_fn(64, 64, |x, y| Luma([((x * 31 + y * 17) * 7 % 251) as u8]));
    let bytes = encode(&DynamicImage::ImageLuma8(noisy), ImageFormat::Png);
    let error = error_for(&bytes[..bytes.len() / 2]);
    assert!(matches!(error, DigitError::Corrupt { .. }), "{error:?}");
    assert_names_file(&error);
}

#[test]
fn uniform_image_has_no_ink() {
    for shade in [0u8, 128, 255] {
        let plain = GrayImage::from_pixel(40, 30, Luma([shade]));
        let error = error_for(&encode(&DynamicImage::ImageLuma8(plain), ImageFormat::Png));
        assert!(matches!(error, DigitError::NoInk { .. }), "{error:?}");
        assert_names_file(&error);
    }
    let transparent = ImageBuffer::from_pixel(40, 30, Rgba([0u8, 0, 0, 0]));
    let error = error_for(&encode(
        &DynamicImage::ImageRgba8(transparent),
        ImageFormat::Png,
    ));
    assert!(matches!(error, DigitError::NoInk { .. }), "{error:?}");
}

#[test]
fn uniform_jpeg_has_no_ink() {
    let plain = DynamicImage::ImageRgb8(ImageBuffer::from_pixel(40, 30, Rgb([230u8, 225, 215])));
    let error = error_for(&encode(&plain, ImageFormat::Jpeg));
    assert!(matches!(error, DigitError::NoInk { .. }), "{error:?}");
}

#[test]
fn decompression_bomb_fails_on_the_limit_without_allocating() {
    // Only the header: it claims 100000 x 100000 pixels (10 GB as 8-bit grey).
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, 100_000, 100_000);
        encoder.set_color(png::ColorType::Grayscale);
        encoder.set_depth(png::BitDepth::Eight);
        let writer = encoder.write_header().unwrap();
        drop(writer);
    }
    let started = Instant::now();
    let error = error_for(&bytes);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(error, DigitError::TooLarge { .. }), "{error:?}");
    assert_names_file(&error);

    // Within the dimension limits, the allocation limit still applies.
    let tight = DigitLimits {
        max_alloc_bytes: 1024,
        ..DigitLimits::default()
    };
    let bytes = encode(&DynamicImage::ImageLuma8(standard_gray()), ImageFormat::Png);
    let error = digit_from_bytes(&bytes, "users-digit.png", &tight).unwrap_err();
    assert!(matches!(error, DigitError::TooLarge { .. }), "{error:?}");
}

#[test]
fn load_digit_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-digit.png");
    let error = load_digit(&missing, &DigitLimits::default()).unwrap_err();
    assert!(matches!(error, DigitError::Read { .. }), "{error:?}");
    assert!(error.to_string().contains("no-such-digit.png"));

    let empty = dir.path().join("empty-digit.png");
    std::fs::write(&empty, b"").unwrap();
    let error = load_digit(&empty, &DigitLimits::default()).unwrap_err();
    assert!(matches!(error, DigitError::Empty { .. }), "{error:?}");
    assert!(error.to_string().contains("empty-digit.png"));
}

/// A 28×28 MNIST-like digit: an anti-aliased ring whose box is 20 px and whose brightest pixel
/// is 255, placed with its top-left box corner at `(left, top)`.
fn mnist_like_ring(left: u32, top: u32) -> GrayImage {
    GrayImage::from_fn(28, 28, |x, y| {
        let (u, v) = (x as f32 - left as f32 - 9.5, y as f32 - top as f32 - 9.5);
        let r = (u * u / 0.6 + v * v).sqrt();
        // Ink between radii 7 and 10, grey at the edges.
        let ink = (1.2 * (1.0 - (r - 8.5).abs() / 1.5)).clamp(0.0, 1.0);
        Luma([(ink * 255.0).round() as u8])
    })
}

fn unit(image: &GrayImage) -> Vec<f32> {
    image.pixels().map(|p| f32::from(p.0[0]) / 255.0).collect()
}

#[test]
fn an_mnist_like_png_passes_through_unchanged() {
    // Box columns 4..24, rows 4..24: centre of mass (14.0, 14.0), half a pixel from MNIST's
    // (14.5, 14.5), as close as whole pixels get.
    let ring = mnist_like_ring(4, 4);
    let pixels = unit(&ring);
    let (cx, cy) = centre_of_mass(&pixels, SIDE).unwrap();
    assert!(
        (cx - 14.0).abs() < 0.05 && (cy - 14.0).abs() < 0.05,
        "({cx}, {cy})"
    );
    let digit = decode(&encode(&DynamicImage::ImageLuma8(ring), ImageFormat::Png));
    assert!(!digit.inverted);
    assert_eq!(digit.pixels, pixels);
}

/// `pixels` (28×28) moved by `(dx, dy)` whole pixels, if that keeps every non-zero pixel.
fn shifted(pixels: &[f32], dx: i32, dy: i32) -> Option<Vec<f32>> {
    let mut out = vec![0.0; PIXELS];
    for (i, &v) in pixels.iter().enumerate().filter(|(_, &v)| v > 0.0) {
        let (x, y) = ((i % SIDE) as i32 + dx, (i / SIDE) as i32 + dy);
        if !(0..SIDE as i32).contains(&x) || !(0..SIDE as i32).contains(&y) {
            return None;
        }
        out[y as usize * SIDE + x as usize] = v;
    }
    Some(out)
}

#[test]
fn an_mnist_like_png_placed_elsewhere_is_only_moved() {
    let input = unit(&mnist_like_ring(1, 7));
    let digit = decode(&encode(
        &DynamicImage::ImageLuma8(mnist_like_ring(1, 7)),
        ImageFormat::Png,
    ));
    // Values untouched, moved by whole pixels to MNIST's centre of mass.
    let moves: Vec<(i32, i32)> = (-6..=6)
        .flat_map(|dx| (-6..=6).map(move |dy| (dx, dy)))
        .filter(|&(dx, dy)| shifted(&input, dx, dy).as_deref() == Some(&digit.pixels[..]))
        .collect();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_ne!(moves[0], (0, 0));
    assert_mnist_like(&digit);
}

#[test]
fn a_small_digit_in_a_28_pixel_image_is_still_scaled_to_the_box() {
    // A 10 px ring is not MNIST-sized: it goes through the whole preparation.
    let small = GrayImage::from_fn(28, 28, |x, y| {
        let (u, v) = (x as f32 - 13.5, y as f32 - 13.5);
        Luma([if (3.0..5.0).contains(&(u * u + v * v).sqrt()) {
            255
        } else {
            0
        }])
    });
    let digit = decode(&encode(&DynamicImage::ImageLuma8(small), ImageFormat::Png));
    assert_mnist_like(&digit);
}
