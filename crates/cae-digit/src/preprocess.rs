//! The MNIST-style normalisation, on a decoded image. See the crate docs for the steps and why.

use image::imageops::{self, FilterType};
use image::{DynamicImage, ImageBuffer, Luma};

use crate::placement::{is_mnist_frame, place, recentre};
use crate::{BOX, SIDE};

/// Below this spread between background and strongest ink the image counts as blank: JPEG noise
/// on a uniform image stays well under it, while even a faint pencil stroke is above it.
const MIN_CONTRAST: f32 = 0.1;
/// Fraction of the ink range treated as paper texture / compression noise and mapped to 0.
const NOISE_FLOOR: f32 = 0.1;
/// Normalised intensity above which a pixel counts as ink when finding the bounding box.
const INK_THRESHOLD: f32 = 0.2;

/// Returns the 784 MNIST-like pixels and whether the input was inverted, or `None` when the
/// image has no ink.
pub(crate) fn mnist_like(image: &DynamicImage) -> Option<(Vec<f32>, bool)> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    if width == 0 || height == 0 {
        return None;
    }
    let oriented = ink_intensity(image)?;
    // Already what MNIST's own preparation produces (an MNIST digit exported as an image): only
    // its placement is checked, so that it reaches the model exactly as the dataset's copy does.
    if (width, height) == (SIDE, SIDE)
        && oriented.background == 0.0
        && is_mnist_frame(&oriented.intensity)
    {
        return Some((recentre(oriented.intensity), oriented.inverted));
    }
    let normalised = normalise(oriented.intensity, oriented.background)?;
    let (x0, y0, x1, y1) = ink_bounding_box(&normalised, width, height)?;
    let scaled = crop_and_fit(&normalised, width, (x0, y0, x1, y1));
    let (fit_width, fit_height) = (scaled.width() as usize, scaled.height() as usize);
    Some((
        place(scaled.as_raw(), fit_width, fit_height),
        oriented.inverted,
    ))
}

/// Composited luminance, oriented so that ink is brighter than the background.
struct Oriented {
    intensity: Vec<f32>,
    /// Median of the border after orientation: the background level.
    background: f32,
    /// Whether the luminance was flipped (the input had a light background).
    inverted: bool,
}

fn ink_intensity(image: &DynamicImage) -> Option<Oriented> {
    // 16 bits keep the precision of 16-bit PNGs; palette images arrive already expanded.
    let luma_alpha = image.to_luma_alpha16();
    let (width, height) = luma_alpha.dimensions();
    let to_unit = |v: u16| f32::from(v) / f32::from(u16::MAX);
    let pixels: Vec<(f32, f32)> = luma_alpha
        .pixels()
        .map(|p| (to_unit(p.0[0]), to_unit(p.0[1])))
        .collect();
    drop(luma_alpha);

    let border = border_indices(width as usize, height as usize);
    let paper = paper_luminance(&pixels, &border)?;
    let composited: Vec<f32> = pixels
        .iter()
        .map(|&(l, a)| a * l + (1.0 - a) * paper)
        .collect();

    let mut border_values: Vec<f32> = border.iter().map(|&i| composited[i]).collect();
    let background = median(&mut border_values);
    // Dark ink on light paper: flip so that ink is bright, as in MNIST.
    let inverted = background > 0.5;
    let (intensity, background) = if inverted {
        (
            composited.into_iter().map(|v| 1.0 - v).collect(),
            1.0 - background,
        )
    } else {
        (composited, background)
    };
    Some(Oriented {
        intensity,
        background,
        inverted,
    })
}

/// The colour transparent pixels are composited onto.
fn paper_luminance(pixels: &[(f32, f32)], border: &[usize]) -> Option<f32> {
    let border_opacity = border.iter().map(|&i| pixels[i].1).sum::<f32>() / border.len() as f32;
    if border_opacity >= 0.5 {
        // The picture has its own background: transparent holes show that paper.
        let mut opaque: Vec<f32> = border
            .iter()
            .map(|&i| pixels[i])
            .filter(|&(_, a)| a >= 0.5)
            .map(|(l, _)| l)
            .collect();
        return Some(median(&mut opaque));
    }
    // Transparent background: the opaque strokes are the ink, so the paper must contrast with
    // them whatever tone they have (black strokes on a light page, white ones on a dark page).
    let (weighted_luminance, opacity) = pixels
        .iter()
        .fold((0.0f64, 0.0f64), |(sum, weight), &(l, a)| {
            (sum + f64::from(l * a), weight + f64::from(a))
        });
    if opacity < 1e-3 {
        return None; // fully transparent: nothing drawn
    }
    Some(if weighted_luminance / opacity < 0.5 {
        1.0
    } else {
        0.0
    })
}

/// Maps `background` to 0 and the strongest ink to 1, removing low-level noise.
fn normalise(mut intensity: Vec<f32>, background: f32) -> Option<Vec<f32>> {
    let peak = intensity.iter().copied().fold(f32::MIN, f32::max);
    let range = peak - background;
    if range < MIN_CONTRAST {
        return None;
    }
    let floor = background + NOISE_FLOOR * range;
    let span = peak - floor;
    for v in &mut intensity {
        *v = ((*v - floor) / span).clamp(0.0, 1.0);
    }
    Some(intensity)
}

/// Inclusive bounding box `(x0, y0, x1, y1)` of the pixels that count as ink.
fn ink_bounding_box(
    pixels: &[f32],
    width: usize,
    height: usize,
) -> Option<(usize, usize, usize, usize)> {
    let mut bbox: Option<(usize, usize, usize, usize)> = None;
    for y in 0..height {
        for x in 0..width {
            if pixels[y * width + x] > INK_THRESHOLD {
                bbox = Some(match bbox {
                    None => (x, y, x, y),
                    Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
                });
            }
        }
    }
    bbox
}

/// Crops to the box and scales it so that its longer side is [`BOX`] pixels.
fn crop_and_fit(
    pixels: &[f32],
    width: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
) -> ImageBuffer<Luma<f32>, Vec<f32>> {
    let (crop_w, crop_h) = (x1 - x0 + 1, y1 - y0 + 1);
    let crop = ImageBuffer::<Luma<f32>, Vec<f32>>::from_fn(crop_w as u32, crop_h as u32, |x, y| {
        Luma([pixels[(y0 + y as usize) * width + x0 + x as usize]])
    });
    let longer = crop_w.max(crop_h) as f32;
    let fit =
        |side: usize| ((side as f32 * BOX as f32 / longer).round() as u32).clamp(1, BOX as u32);
    // Triangle widens its support when shrinking, so large photos are averaged, not aliased.
    let mut scaled = imageops::resize(&crop, fit(crop_w), fit(crop_h), FilterType::Triangle);
    for p in scaled.pixels_mut() {
        p.0[0] = p.0[0].clamp(0.0, 1.0);
    }
    scaled
}

/// Indices of the outermost ring of pixels (every pixel, for images one or two pixels thick).
fn border_indices(width: usize, height: usize) -> Vec<usize> {
    // Walk the ring only: a full scan would touch every pixel of a large photo.
    let mut indices = Vec::with_capacity(2 * (width + height));
    for y in 0..height {
        if y == 0 || y + 1 == height {
            indices.extend((0..width).map(|x| y * width + x));
        } else {
            indices.push(y * width);
            if width > 1 {
                indices.push(y * width + width - 1);
            }
        }
    }
    indices
}

/// Median of `values` (reorders them); 0 for an empty slice.
fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    let mid = values.len() / 2;
    let (_, m, _) = values.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}
