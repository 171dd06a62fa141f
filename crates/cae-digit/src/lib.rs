//! Turn a user's image of a handwritten digit into an MNIST-like 28×28 input.
//!
//! MNIST digits are not raw scans: LeCun et al. size-normalised each digit to fit a 20×20 box
//! (keeping its aspect ratio, anti-aliased, hence the grey levels), then centred it in a 28×28
//! field by its centre of mass. Ink is 1.0 and the background exactly 0.0. A model trained on
//! MNIST does badly on anything else, so [`load_digit`] and [`digit_from_bytes`] redo those steps:
//!
//! 1. **Decode** PNG (grey, grey+alpha, RGB, RGBA, 8/16-bit, palette) or JPEG, with
//!    [`image::Limits`] so a decompression bomb fails on its header instead of allocating
//!    gigabytes ([`DigitLimits`]). JPEG EXIF orientation is applied, so phone photos are upright.
//! 2. **Grayscale luminance** in `[0, 1]`, keeping the alpha channel.
//! 3. **Alpha-composite** onto the paper colour. When the border is opaque the paper is what the
//!    border shows; when the border is transparent (a drawing exported with no background) the
//!    ink is whatever is opaque, so the paper is taken as the opposite of the ink's tone.
//! 4. **Decide polarity**: the median of the border pixels is the background. A light background
//!    (dark ink on paper, the usual case) is inverted so that ink is bright, as in MNIST;
//!    [`Digit::inverted`] records that.
//! 5. **Normalise** so that the background maps to 0 and the strongest ink to 1, with a small
//!    noise floor so paper texture and JPEG ringing become exactly 0.
//! 6. **Threshold lightly** (normalised ink > 0.2) to find the ink and **crop** to its bounding box.
//! 7. **Scale** the crop so that its longer side is 20 px, keeping the aspect ratio, with a
//!    triangle (bilinear, widened when shrinking) filter so that it is anti-aliased.
//! 8. **Centre by mass**: place it in 28×28 so that its centre of mass lands where MNIST's own
//!    digits have theirs, [`MNIST_CENTRE_OF_MASS`] = (14.5, 14.5) with pixel `(x, y)` centred
//!    at `(x + 0.5, y + 0.5)` (measured on MNIST; see [`placement`]), shifting by whole pixels and
//!    clamping so that no ink leaves the field. Values stay in `[0, 1]`.
//!
//! An image that is already an MNIST digit — 28×28, background exactly 0 (or exactly white,
//! inverted), brightest ink at MNIST's level ([`MNIST_MIN_PEAK`]) and the box around its non-zero
//! pixels MNIST's size ([`MNIST_BOX_SIDES`]) — skips steps 5–7: its pixels are kept as they are and
//! only moved if its centre of mass is more than half a pixel from MNIST's. An MNIST test digit
//! saved as an 8-bit PNG therefore gives exactly the dataset's `pixel / 255` values.
//!
//! Every bad input is a [`DigitError`] that names the file and what is wrong with it; nothing
//! here panics on user data.
#![warn(missing_docs)]

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader};

pub mod placement;
mod preprocess;

pub use placement::{centre_of_mass, MNIST_BOX_SIDES, MNIST_CENTRE_OF_MASS, MNIST_MIN_PEAK};

/// Side of the square MNIST input.
pub const SIDE: usize = 28;
/// Number of pixels of an MNIST input (28 × 28).
pub const PIXELS: usize = SIDE * SIDE;
/// Side of the box the digit itself is scaled to fit, as MNIST did.
pub const BOX: usize = 20;

/// A digit ready for the model: 784 values in row-major order, ink 1.0, background 0.0.
#[derive(Debug, Clone, PartialEq)]
pub struct Digit {
    /// 28 × 28 row-major intensities in `[0, 1]`; ink is 1.0 as in MNIST.
    pub pixels: Vec<f32>,
    /// True when the input was dark ink on light paper and was inverted to MNIST's polarity.
    pub inverted: bool,
    /// Width and height of the decoded input image, in pixels.
    pub original_size: (u32, u32),
}

/// Safety limits applied while decoding, so that a hostile or accidental huge image fails fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigitLimits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest amount of memory the decoder may allocate, in bytes.
    pub max_alloc_bytes: u64,
    /// Largest accepted file, in bytes (the encoded file is read into memory whole).
    pub max_file_bytes: u64,
}

impl Default for DigitLimits {
    /// 8192 × 8192 pixels, 64 MiB decoded and 32 MiB of file: far beyond any phone photo of a
    /// digit (12 megapixels of 8-bit RGB are 36 MB), and small enough that decoding and
    /// preprocessing any accepted image stays under 300 MB of memory.
    fn default() -> Self {
        Self {
            max_width: 8192,
            max_height: 8192,
            max_alloc_bytes: 64 * 1024 * 1024,
            max_file_bytes: 32 * 1024 * 1024,
        }
    }
}

impl DigitLimits {
    fn to_image_limits(self) -> image::Limits {
        // `image::Limits` is non-exhaustive, so start from its defaults and override.
        let mut limits = image::Limits::default();
        limits.max_image_width = Some(self.max_width);
        limits.max_image_height = Some(self.max_height);
        limits.max_alloc = Some(self.max_alloc_bytes);
        limits
    }
}

/// Why an image could not be turned into a digit. Every variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigitError {
    /// The file could not be read at all.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file has no bytes.
    #[error("{name}: the file is empty; expected a PNG or JPEG image of a digit")]
    Empty {
        /// File name or other label of the input.
        name: String,
    },
    /// The bytes are not an image in a format this crate recognises.
    #[error("{name}: not a PNG or JPEG image (unrecognised file signature); save the digit as PNG or JPEG and try again")]
    UnknownFormat {
        /// File name or other label of the input.
        name: String,
    },
    /// A recognised image format that is not decoded here (GIF, WebP, ...).
    #[error("{name}: {detail}; save the digit as PNG or JPEG and try again")]
    UnsupportedFormat {
        /// File name or other label of the input.
        name: String,
        /// What the decoder said.
        detail: String,
    },
    /// The image is truncated or corrupt.
    #[error("{name}: the image is truncated or corrupt ({detail})")]
    Corrupt {
        /// File name or other label of the input.
        name: String,
        /// What the decoder said.
        detail: String,
    },
    /// The image is larger than [`DigitLimits`] allow (possibly a decompression bomb).
    #[error("{name}: the image is too large to decode safely ({detail})")]
    TooLarge {
        /// File name or other label of the input.
        name: String,
        /// Which limit was hit.
        detail: String,
    },
    /// The image decoded, but there is no digit in it: it is (nearly) one uniform colour.
    #[error("{name}: no ink found: the image is (nearly) one uniform colour; expected a dark digit on light paper or a light digit on a dark background")]
    NoInk {
        /// File name or other label of the input.
        name: String,
    },
}

/// Reads the image at `path` and turns it into an MNIST-like [`Digit`].
///
/// Errors name `path`'s file name; see [`DigitError`].
pub fn load_digit(path: &Path, limits: &DigitLimits) -> Result<Digit, DigitError> {
    let read_error = |source| DigitError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    // One byte past the limit tells a file that is too large from one that just fits.
    std::fs::File::open(path)
        .and_then(|f| f.take(limits.max_file_bytes + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DigitError::TooLarge {
            name: path.display().to_string(),
            detail: format!(
                "the file has more than {} bytes, the most accepted",
                limits.max_file_bytes
            ),
        });
    }
    digit_from_bytes(&bytes, &path.display().to_string(), limits)
}

/// Turns the encoded image in `bytes` into an MNIST-like [`Digit`].
///
/// `source_name` (usually the file name) is only used in error messages.
pub fn digit_from_bytes(
    bytes: &[u8],
    source_name: &str,
    limits: &DigitLimits,
) -> Result<Digit, DigitError> {
    let name = source_name.to_owned();
    if bytes.is_empty() {
        return Err(DigitError::Empty { name });
    }
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(DigitError::TooLarge {
            name,
            detail: format!(
                "{} bytes of encoded image, more than the {} accepted",
                bytes.len(),
                limits.max_file_bytes
            ),
        });
    }
    let (image, original_size) = decode(bytes, &name, limits)?;
    let (pixels, inverted) = preprocess::mnist_like(&image).ok_or(DigitError::NoInk { name })?;
    Ok(Digit {
        pixels,
        inverted,
        original_size,
    })
}

/// The longest side an image is worked on at: the digit ends up in a 20×20 box, so more
/// resolution adds nothing but memory (preprocessing holds several f32 copies of the image).
const WORKING_SIDE: u32 = 1024;

/// The decoded image, shrunk to fit [`WORKING_SIDE`] and upright, and its size as decoded.
fn decode(
    bytes: &[u8],
    name: &str,
    limits: &DigitLimits,
) -> Result<(DynamicImage, (u32, u32)), DigitError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| classify(ImageError::IoError(e), name))?;
    if reader.format().is_none() {
        return Err(DigitError::UnknownFormat {
            name: name.to_owned(),
        });
    }
    let image_limits = limits.to_image_limits();
    reader.limits(image_limits.clone());
    // `ImageReader::decode` would ignore EXIF orientation; go through the decoder to keep it,
    // with the same up-front allocation check `decode` does.
    let mut decoder = reader.into_decoder().map_err(|e| classify(e, name))?;
    let mut budget = image_limits;
    budget
        .reserve(decoder.total_bytes())
        .map_err(|e| classify(e, name))?;
    let orientation = decoder.orientation().map_err(|e| classify(e, name))?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| classify(e, name))?;
    let decoded_size = (image.width(), image.height());
    if image.width().max(image.height()) > WORKING_SIDE {
        // Area averaging in integers: its only allocation is the small result.
        image = image.thumbnail(WORKING_SIDE, WORKING_SIDE);
    }
    image.apply_orientation(orientation);
    let (w, h) = decoded_size;
    let quarter_turn = matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    );
    Ok((image, if quarter_turn { (h, w) } else { (w, h) }))
}

fn classify(error: ImageError, name: &str) -> DigitError {
    let name = name.to_owned();
    let detail = without_debug_text(&error.to_string());
    match error {
        ImageError::Limits(_) => DigitError::TooLarge { name, detail },
        ImageError::Unsupported(_) => DigitError::UnsupportedFormat { name, detail },
        // An I/O error on an in-memory cursor can only mean the data ended early.
        ImageError::Decoding(_)
        | ImageError::IoError(_)
        | ImageError::Parameter(_)
        | ImageError::Encoding(_) => DigitError::Corrupt { name, detail },
    }
}

/// The decoders' messages print some values with `Debug` (the PNG decoder's
/// `ChunkType { type: IDAT, critical: true, .. }`); users get the chunk's name instead.
fn without_debug_text(message: &str) -> String {
    const OPEN: &str = "ChunkType { type: ";
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = rest.find(OPEN) {
        out.push_str(&rest[..at]);
        let after = &rest[at + OPEN.len()..];
        let name_end = after.find([',', ' ', '}']).unwrap_or(after.len());
        out.push_str(&after[..name_end]);
        out.push_str(" chunk");
        rest = after.find('}').map_or("", |close| &after[close + 1..]);
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::without_debug_text;

    #[test]
    fn debug_text_of_chunk_types_becomes_the_chunk_name() {
        let message = "Format error decoding Png: ChunkType { type: IDAT, critical: true, private: false, reserved: false, safecopy: false } is not valid here";
        assert_eq!(
            without_debug_text(message),
            "Format error decoding Png: IDAT chunk is not valid here"
        );
        assert_eq!(without_debug_text("plain"), "plain");
    }
}
