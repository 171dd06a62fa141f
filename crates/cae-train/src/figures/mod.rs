//! PNG figures: the loss curves (`loss`), input/reconstruction grids (`grid`), and the line chart
//! both the loss plot and `eval`'s plots are drawn with (`chart`).
//!
//! Text is rendered by plotters' pure-Rust `ab_glyph` path from a font
//! embedded in the binary, so figures look the same everywhere and no system
//! fontconfig or font files are needed. PNGs are encoded in memory with
//! `image` and written atomically like every other run artifact.

mod chart;
mod grid;
mod loss;

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use image::{GrayImage, ImageFormat};
use plotters::style::FontStyle;

use crate::artifacts::write_atomic;

pub(crate) use chart::{draw_line_chart, Line, LineChart};
pub(crate) use grid::mean_of_channels;
pub use grid::{image_grid, save_reconstructions};
pub use loss::plot_losses;

/// DejaVu Sans (Bitstream Vera licence, see assets/fonts/LICENSE-DejaVu.txt).
static FONT_BYTES: &[u8] = include_bytes!("../../../../assets/fonts/DejaVuSans.ttf");
/// The family name plotters' default text styles ask for.
pub(crate) const FONT_FAMILY: &str = "sans-serif";

pub use grid::{GRID_SEPARATOR_PX, RECONSTRUCTIONS_PER_ROW, RECONSTRUCTION_SCALE};
pub use loss::LOSS_PLOT_SIZE;

/// Errors from drawing or saving a figure; each names the output file.
#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    /// Writing the file failed.
    #[error("failed to write {path}")]
    Write {
        /// The figure's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Encoding the PNG failed.
    #[error("failed to encode PNG for {path}")]
    Encode {
        /// The figure's file.
        path: PathBuf,
        /// Why.
        #[source]
        source: image::ImageError,
    },
    /// Drawing failed (or there was nothing to draw).
    #[error("failed to draw {path}: {message}")]
    Draw {
        /// The figure's file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The embedded font could not be registered.
    #[error("embedded font could not be loaded")]
    Font,
    /// A loss plot of no epochs.
    #[error("cannot plot {path}: the metrics log has no epochs")]
    NoEpochs {
        /// The figure's file.
        path: PathBuf,
    },
    #[error(
        "cannot draw {path}: {what} has {actual} values, expected {expected} \
         ({n} images of {width}x{height})"
    )]
    /// Images whose pixel count is not what their sizes say.
    LengthMismatch {
        /// The figure's file.
        path: PathBuf,
        /// Which images (`inputs`, `reconstructions`).
        what: &'static str,
        /// Values given.
        actual: usize,
        /// Values expected.
        expected: usize,
        /// Number of images.
        n: usize,
        /// Image width in pixels.
        width: usize,
        /// Image height in pixels.
        height: usize,
    },
    #[error("cannot draw {path}: {n} images of {width}x{height} is an empty figure")]
    /// No images, or images of no pixels.
    EmptyFigure {
        /// The figure's file.
        path: PathBuf,
        /// Number of images.
        n: usize,
        /// Image width in pixels.
        width: usize,
        /// Image height in pixels.
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

/// Encodes `img` as PNG and writes it atomically to `path`.
pub fn save_png(img: &GrayImage, path: &Path) -> Result<(), FigureError> {
    write_png_bytes(encode_png(img, path)?, path)
}

/// Encodes `img` as PNG in memory (errors name `path`, where it is meant to go).
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

/// Writes encoded PNG `bytes` atomically to `path`.
pub(crate) fn write_png_bytes(bytes: Vec<u8>, path: &Path) -> Result<(), FigureError> {
    write_atomic(path, &bytes).map_err(|source| FigureError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    use image::ImageFormat;

    /// Asserts that `path` is a PNG of `size` that is not one flat colour.
    pub fn assert_png_of_size_with_content(path: &Path, size: (u32, u32)) {
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
}
