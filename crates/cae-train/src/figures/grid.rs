//! Images laid out as a grid (nearest-neighbour enlarged, white gaps), and the training run's
//! inputs-above-reconstructions figure built from it.
use std::path::Path;

use image::{GrayImage, Luma};

use super::{save_png, FigureError};

/// Gap between images in a grid, in output pixels.
pub const GRID_SEPARATOR_PX: u32 = 2;
/// White gaps, like the whitespace between subplots in the original
/// matplotlib figure; MNIST digits have black backgrounds so cells stay distinct.
const GRID_SEPARATOR_VALUE: u8 = 255;
/// Images per row in [`save_reconstructions`], as in the original program.
pub const RECONSTRUCTIONS_PER_ROW: usize = 10;
/// Nearest-neighbour enlargement in [`save_reconstructions`] (28 px -> 84 px).
pub const RECONSTRUCTION_SCALE: u32 = 3;

/// Lays images out as a grid: figure row `r` holds the images of `rows[r]`
/// (each `width * height` values, row-major, concatenated), left to right.
///
/// Values are clamped to [0, 1] (NaN becomes 0) and mapped to 0..=255; each
/// pixel becomes a `scale` x `scale` block; cells are separated by
/// [`GRID_SEPARATOR_PX`] white pixels. Rows with fewer images than the
/// longest row are padded with white.
///
/// # Panics
/// If `width`, `height` or `scale` is zero, or a row's length is not a
/// multiple of `width * height`; these are programming errors, and callers
/// that take sizes from users validate first (see [`save_reconstructions`]).
pub fn image_grid(rows: &[&[f32]], width: usize, height: usize, scale: u32) -> GrayImage {
    assert!(
        width > 0 && height > 0 && scale > 0,
        "image_grid: width ({width}), height ({height}) and scale ({scale}) must be non-zero"
    );
    let pixels_per_image = width * height;
    for (r, row) in rows.iter().enumerate() {
        assert!(
            row.len() % pixels_per_image == 0,
            "image_grid: row {r} has {} values, not a multiple of {width}x{height}",
            row.len()
        );
    }

    let columns = rows
        .iter()
        .map(|row| row.len() / pixels_per_image)
        .max()
        .unwrap_or(0) as u32;
    let cell_width = width as u32 * scale;
    let cell_height = height as u32 * scale;
    let grid_extent =
        |cells: u32, cell: u32| cells * cell + cells.saturating_sub(1) * GRID_SEPARATOR_PX;
    let mut grid = GrayImage::from_pixel(
        grid_extent(columns, cell_width),
        grid_extent(rows.len() as u32, cell_height),
        Luma([GRID_SEPARATOR_VALUE]),
    );

    for (r, row) in rows.iter().enumerate() {
        let top = r as u32 * (cell_height + GRID_SEPARATOR_PX);
        for (c, image) in row.chunks_exact(pixels_per_image).enumerate() {
            let left = c as u32 * (cell_width + GRID_SEPARATOR_PX);
            for (i, &value) in image.iter().enumerate() {
                let luma = Luma([to_gray(value)]);
                let x0 = left + (i % width) as u32 * scale;
                let y0 = top + (i / width) as u32 * scale;
                for dy in 0..scale {
                    for dx in 0..scale {
                        grid.put_pixel(x0 + dx, y0 + dy, luma);
                    }
                }
            }
        }
    }
    grid
}

fn to_gray(value: f32) -> u8 {
    // `f32::clamp` passes NaN through; `as u8` then saturates it to 0.
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

/// Saves `n` inputs above their reconstructions, [`RECONSTRUCTIONS_PER_ROW`]
/// per row: for every 10 images, a row of inputs then a row of their
/// reconstructions, enlarged [`RECONSTRUCTION_SCALE`] times.
///
/// `inputs` and `recons` each hold `n * width * height` values in [0, 1].
/// Nothing is written when the lengths are wrong.
pub fn save_reconstructions(
    inputs: &[f32],
    recons: &[f32],
    n: usize,
    width: usize,
    height: usize,
    path: &Path,
) -> Result<(), FigureError> {
    if n == 0 || width == 0 || height == 0 {
        return Err(FigureError::EmptyFigure {
            path: path.to_path_buf(),
            n,
            width,
            height,
        });
    }
    let pixels_per_image = width * height;
    let expected = n * pixels_per_image;
    for (what, values) in [("inputs", inputs), ("reconstructions", recons)] {
        if values.len() != expected {
            return Err(FigureError::LengthMismatch {
                path: path.to_path_buf(),
                what,
                actual: values.len(),
                expected,
                n,
                width,
                height,
            });
        }
    }

    let chunk = RECONSTRUCTIONS_PER_ROW * pixels_per_image;
    let rows: Vec<&[f32]> = inputs
        .chunks(chunk)
        .zip(recons.chunks(chunk))
        .flat_map(|(input_row, recon_row)| [input_row, recon_row])
        .collect();
    save_png(
        &image_grid(&rows, width, height, RECONSTRUCTION_SCALE),
        path,
    )
}

/// Interleaved pixels (`channels` values each) as one grey value each, their mean.
pub(crate) fn mean_of_channels(values: &[f32], channels: usize) -> Vec<f32> {
    if channels == 1 {
        return values.to_vec();
    }
    values
        .chunks(channels)
        .map(|pixel| pixel.iter().sum::<f32>() / channels as f32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::save_png;

    #[test]
    fn image_grid_places_scaled_pixels_and_separators() {
        // Two rows of 2x2 images: row 0 has two images, row 1 has one.
        let a = [0.0, 1.0, 0.5, 0.25];
        let b = [1.0, 1.0, 1.0, -3.0]; // -3 clamps to 0
        let c = [0.2, 0.4, 0.6, 2.0]; // 2 clamps to 1
        let row0: Vec<f32> = a.iter().chain(&b).copied().collect();
        let grid = image_grid(&[&row0, &c], 2, 2, 3);

        // 2 cells of 6 px + 2 px gap wide, 2 cells of 6 px + 2 px gap tall.
        assert_eq!(grid.dimensions(), (14, 14));
        let at = |x, y| grid.get_pixel(x, y)[0];
        // Image a: pixel (1, 0) = 1.0 covers x 3..6, y 0..3.
        assert_eq!(at(3, 0), 255);
        assert_eq!(at(5, 2), 255);
        assert_eq!(at(2, 2), 0); // pixel (0, 0) = 0.0
        assert_eq!(at(0, 3), 128); // pixel (0, 1) = 0.5
        assert_eq!(at(5, 5), 64); // pixel (1, 1) = 0.25
                                  // Separator column between a and b.
        assert_eq!(at(6, 0), GRID_SEPARATOR_VALUE);
        assert_eq!(at(7, 5), GRID_SEPARATOR_VALUE);
        // Image b starts at x = 8; its pixel (1, 1) clamps to 0.
        assert_eq!(at(8, 0), 255);
        assert_eq!(at(13, 5), 0);
        // Separator row, then image c at y = 8; its pixel (1, 1) clamps to 255.
        assert_eq!(at(0, 6), GRID_SEPARATOR_VALUE);
        assert_eq!(at(0, 8), 51); // 0.2
        assert_eq!(at(5, 13), 255);
        // Row 1 has no second image: the cell is blank.
        assert_eq!(at(10, 10), GRID_SEPARATOR_VALUE);
    }

    #[test]
    fn image_grid_maps_nan_to_black() {
        let grid = image_grid(&[&[f32::NAN]], 1, 1, 1);
        assert_eq!(grid.get_pixel(0, 0)[0], 0);
    }

    #[test]
    #[should_panic(expected = "not a multiple")]
    fn image_grid_panics_on_partial_image() {
        image_grid(&[&[0.0; 5]], 2, 2, 1);
    }

    #[test]
    fn reconstructions_wrap_ten_per_row_with_inputs_above() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reconstructions.png");
        let (w, h, n) = (4, 3, 12);
        let inputs = vec![1.0f32; n * w * h];
        let recons = vec![0.0f32; n * w * h];
        save_reconstructions(&inputs, &recons, n, w, h, &path).unwrap();

        let img = image::open(&path).unwrap().to_luma8();
        let scale = RECONSTRUCTION_SCALE;
        let (cell_w, cell_h) = (w as u32 * scale, h as u32 * scale);
        let gap = GRID_SEPARATOR_PX;
        // 10 columns, 4 rows (inputs, recons, inputs, recons).
        assert_eq!(
            img.dimensions(),
            (10 * cell_w + 9 * gap, 4 * cell_h + 3 * gap)
        );
        let row_top = |r: u32| r * (cell_h + gap);
        assert_eq!(img.get_pixel(0, row_top(0))[0], 255); // input
        assert_eq!(img.get_pixel(0, row_top(1))[0], 0); // reconstruction
        assert_eq!(img.get_pixel(0, row_top(2))[0], 255); // inputs 11..12
        assert_eq!(img.get_pixel(cell_w + gap, row_top(3))[0], 0); // recon 12
                                                                   // Only two images in the second pair of rows: third cell is blank.
        assert_eq!(
            img.get_pixel(2 * (cell_w + gap), row_top(3))[0],
            GRID_SEPARATOR_VALUE
        );
    }

    #[test]
    fn reconstructions_reject_wrong_lengths_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reconstructions.png");
        let good = vec![0.5f32; 3 * 28 * 28];
        let short = vec![0.5f32; 3 * 28 * 28 - 1];

        let err = save_reconstructions(&short, &good, 3, 28, 28, &path).unwrap_err();
        assert!(
            matches!(
                err,
                FigureError::LengthMismatch {
                    what: "inputs",
                    expected: 2352,
                    actual: 2351,
                    ..
                }
            ),
            "{err:?}"
        );
        let err = save_reconstructions(&good, &short, 3, 28, 28, &path).unwrap_err();
        assert!(
            err.to_string().contains("reconstructions has 2351 values"),
            "{err}"
        );
        assert!(err.to_string().contains("reconstructions.png"), "{err}");
        let err = save_reconstructions(&[], &[], 0, 28, 28, &path).unwrap_err();
        assert!(matches!(err, FigureError::EmptyFigure { .. }));
        assert!(!path.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn save_png_round_trips_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.png");
        let img = image_grid(&[&[0.0, 0.5, 1.0, 0.25]], 2, 2, 1);
        save_png(&img, &path).unwrap();
        assert_eq!(image::open(&path).unwrap().to_luma8(), img);
    }
}
