//! PNG figures: the loss curves and input/reconstruction grids.
//!
//! Text is rendered by plotters' pure-Rust `ab_glyph` path from a font
//! embedded in the binary, so figures look the same everywhere and no system
//! fontconfig or font files are needed. PNGs are encoded in memory with
//! `image` and written atomically like every other run artifact.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{GrayImage, ImageFormat, Luma, RgbImage};
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::artifacts::{write_atomic, EpochMetrics};

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/LICENSE-DejaVu.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
/// The family name plotters' default text styles ask for.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

/// Size of the loss plot in pixels.
pub const LOSS_PLOT_SIZE: (u32, u32) = (900, 560);
/// Gap between images in a grid, in output pixels.
pub const GRID_SEPARATOR_PX: u32 = 2;
/// White gaps, like the whitespace between subplots in the original
/// matplotlib figure; MNIST digits have black backgrounds so cells stay distinct.
const GRID_SEPARATOR_VALUE: u8 = 255;
/// Images per row in [`save_reconstructions`], as in the original program.
pub const RECONSTRUCTIONS_PER_ROW: usize = 10;
/// Nearest-neighbour enlargement in [`save_reconstructions`] (28 px -> 84 px).
pub const RECONSTRUCTION_SCALE: u32 = 3;

/// Errors from drawing or saving a figure; each names the output file.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("failed to write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to encode PNG for {path}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    #[error("failed to draw {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("embedded font could not be loaded")]
    Font,
    #[error("cannot plot {path}: the metrics log has no epochs")]
    NoEpochs { path: PathBuf },
    #[error(
        "cannot draw {path}: {what} has {actual} values, expected {expected} \
         ({n} images of {width}x{height})"
    )]
    LengthMismatch {
        path: PathBuf,
        what: &'static str,
        actual: usize,
        expected: usize,
        n: usize,
        width: usize,
        height: usize,
    },
    #[error("cannot draw {path}: {n} images of {width}x{height} is an empty figure")]
    EmptyFigure {
        path: PathBuf,
        n: usize,
        width: usize,
        height: usize,
    },
}

/// Registers the embedded font with plotters once per process.
pub(crate) fn ensure_font_registered() -> Result<(), FigureError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT_BYTES).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(FigureError::Font)
    }
}

/// One line of the loss plot.
struct LossCurve {
    label: &'static str,
    color: RGBColor,
    value: fn(&EpochMetrics) -> f64,
}

/// Matplotlib's default blue, orange and green, familiar from the original figures.
const LOSS_CURVES: [LossCurve; 3] = [
    LossCurve {
        label: "train total (BCE + penalty)",
        color: RGBColor(31, 119, 180),
        value: |m| m.train_total,
    },
    LossCurve {
        label: "train BCE",
        color: RGBColor(255, 127, 14),
        value: |m| m.train_bce,
    },
    LossCurve {
        label: "test BCE",
        color: RGBColor(44, 160, 44),
        value: |m| m.test_bce,
    },
];

/// Draws train total, train BCE and test BCE against epoch and writes a PNG
/// of [`LOSS_PLOT_SIZE`] to `path`.
///
/// Non-finite values (a diverged epoch) are left out of the curves rather
/// than wrecking the y range.
pub fn plot_losses(log: &[EpochMetrics], path: &Path, title: &str) -> Result<(), FigureError> {
    if log.is_empty() {
        return Err(FigureError::NoEpochs {
            path: path.to_path_buf(),
        });
    }
    ensure_font_registered()?;

    let points: Vec<Vec<(i64, f64)>> = LOSS_CURVES
        .iter()
        .map(|curve| {
            log.iter()
                .map(|m| (m.epoch as i64, (curve.value)(m)))
                .filter(|(_, y)| y.is_finite())
                .collect()
        })
        .collect();

    let x_range = epoch_axis_range(log);
    let y_range = loss_axis_range(points.iter().flatten().map(|&(_, y)| y));
    let y_decimals = loss_label_decimals(&y_range);

    let (width, height) = LOSS_PLOT_SIZE;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let draw_error = |e: &dyn std::fmt::Display| FigureError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_FAMILY, 26))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| draw_error(&e))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss (BCE per pixel)")
            .label_style((FONT_FAMILY, 16))
            .axis_desc_style((FONT_FAMILY, 18))
            // Integer epochs only: plotters may pick fewer labels than epochs.
            .x_labels(log.len().clamp(2, 12))
            .x_label_formatter(&|x| x.to_string())
            .y_label_formatter(&|y| format!("{y:.y_decimals$}"))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(|e| draw_error(&e))?;

        for (curve, points) in LOSS_CURVES.iter().zip(points) {
            let color = curve.color;
            // Point markers keep a single epoch (one point, no line) visible.
            chart
                .draw_series(
                    LineSeries::new(points, color.stroke_width(2)).point_size(if log.len() <= 30 {
                        3
                    } else {
                        0
                    }),
                )
                .map_err(|e| draw_error(&e))?
                .label(curve.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT_FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_error(&e))?;
        root.present().map_err(|e| draw_error(&e))?;
    }

    let image = RgbImage::from_raw(width, height, rgb).expect("buffer sized from the plot size");
    write_png_bytes(encode_png(&image, path)?, path)
}

/// Epoch axis: exactly the logged epochs, widened around a single epoch so
/// that plotters has a non-empty range to draw.
fn epoch_axis_range(log: &[EpochMetrics]) -> std::ops::Range<i64> {
    let first = log.iter().map(|m| m.epoch).min().unwrap_or(1) as i64;
    let last = log.iter().map(|m| m.epoch).max().unwrap_or(1) as i64;
    if first == last {
        first - 1..last + 1
    } else {
        first..last
    }
}

/// Loss axis: the data range plus 5% headroom either side (never below zero,
/// BCE can't be negative), widened when all values are equal.
fn loss_axis_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if !min.is_finite() || !max.is_finite() {
        return 0.0..1.0;
    }
    let span = max - min;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        (max.abs() * 0.1).max(1e-3)
    };
    let lower = if min >= 0.0 {
        (min - pad).max(0.0)
    } else {
        min - pad
    };
    lower..max + pad
}

/// Decimal places for y labels: enough to tell apart labels about a tenth of
/// the axis apart, so 0.30 / 0.25 on a coarse axis and 0.3100 / 0.3080 on a
/// fine one.
fn loss_label_decimals(range: &std::ops::Range<f64>) -> usize {
    let step = (range.end - range.start) / 10.0;
    if step > 0.0 && step.is_finite() {
        (-step.log10()).ceil().clamp(1.0, 8.0) as usize
    } else {
        3
    }
}

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

/// Encodes `img` as PNG and writes it atomically to `path`.
pub fn save_png(img: &GrayImage, path: &Path) -> Result<(), FigureError> {
    write_png_bytes(encode_png(img, path)?, path)
}

pub fn encode_png<P, C>(img: &image::ImageBuffer<P, C>, path: &Path) -> Result<Vec<u8>, FigureError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    let mut bytes = Vec::new();
    img.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)
        .map_err(|source| FigureError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(bytes)
}

pub(crate) fn write_png_bytes(bytes: Vec<u8>, path: &Path) -> Result<(), FigureError> {
    write_atomic(path, &bytes).map_err(|source| FigureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: usize) -> EpochMetrics {
        let e = epoch as f64;
        EpochMetrics {
            epoch,
            train_bce: 0.1 + 0.2 / e,
            train_penalty: 0.01,
            train_total: 0.11 + 0.2 / e,
            test_bce: 0.105 + 0.19 / e,
            test_penalty: 0.01,
            mean_jacobian_frobenius: 3.0,
            seconds: 10.0,
            samples_per_second: 6000.0,
            learning_rate: 1e-3,
        }
    }

    fn assert_png_of_size_with_content(path: &Path, size: (u32, u32)) {
        let bytes = std::fs::read(path).unwrap();
        assert_eq!(image::guess_format(&bytes).unwrap(), ImageFormat::Png);
        let img = image::load_from_memory(&bytes).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), size);
        let first = *img.get_pixel(0, 0);
        assert!(
            img.pixels().any(|p| *p != first),
            "image is one flat colour"
        );
    }

    #[test]
    fn loss_plot_writes_decodable_png_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let log: Vec<EpochMetrics> = (1..=20).map(metrics).collect();
        plot_losses(&log, &path, "CAE on MNIST, lambda = 0.1").unwrap();
        assert_png_of_size_with_content(&path, LOSS_PLOT_SIZE);
        // Curves are drawn in colour; axes, text and background are grey-scale.
        let img = image::open(&path).unwrap().to_rgb8();
        let coloured = img
            .pixels()
            .filter(|p| p[0].abs_diff(p[1]) > 60 || p[1].abs_diff(p[2]) > 60)
            .count();
        assert!(coloured > 500, "only {coloured} coloured pixels");
    }

    #[test]
    fn loss_plot_works_with_a_single_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        plot_losses(&[metrics(1)], &path, "one epoch").unwrap();
        assert_png_of_size_with_content(&path, LOSS_PLOT_SIZE);
    }

    #[test]
    fn loss_plot_skips_non_finite_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let mut log: Vec<EpochMetrics> = (1..=3).map(metrics).collect();
        log[2].train_total = f64::NAN;
        log[2].test_bce = f64::INFINITY;
        plot_losses(&log, &path, "diverged").unwrap();
        assert_png_of_size_with_content(&path, LOSS_PLOT_SIZE);
    }

    #[test]
    fn loss_plot_of_empty_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let err = plot_losses(&[], &path, "nothing").unwrap_err();
        assert!(matches!(err, FigureError::NoEpochs { .. }));
        assert!(!path.exists());
    }

    #[test]
    fn loss_axis_range_pads_and_stays_non_negative() {
        let r = loss_axis_range([0.1, 0.3].into_iter());
        assert!((r.start - 0.09).abs() < 1e-12 && (r.end - 0.31).abs() < 1e-12);
        let flat = loss_axis_range([0.2, 0.2].into_iter());
        assert!(flat.start < 0.2 && flat.end > 0.2);
        assert_eq!(loss_axis_range([0.0, 0.001].into_iter()).start, 0.0);
        assert_eq!(loss_axis_range(std::iter::empty()), 0.0..1.0);
    }

    #[test]
    fn loss_label_decimals_follow_axis_span() {
        assert_eq!(loss_label_decimals(&(0.09..0.31)), 2);
        assert_eq!(loss_label_decimals(&(0.294..0.3108)), 3);
        assert_eq!(loss_label_decimals(&(0.0..50.0)), 1);
        assert_eq!(loss_label_decimals(&(0.2..0.2)), 3);
    }

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
