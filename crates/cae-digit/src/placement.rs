//! Where a digit goes in the 28×28 field: MNIST's own placement, measured on MNIST itself.
//!
//! **Pixel convention.** Pixel `(x, y)` (column, row; row 0 at the top) covers the square
//! `[x, x + 1) × [y, y + 1)`, so its centre is `(x + 0.5, y + 0.5)` and the field's centre is
//! `(14.0, 14.0)`. Centres of mass here are the intensity-weighted means of those pixel centres.
//!
//! **What MNIST does, measured** (`measured_mnist_placement` in this crate's tests, on
//! `CAE_TEST_MNIST_DIR`): in this convention every one of the 70,000 MNIST digits has its centre
//! of mass in `[13.98, 15.00] × [13.98, 15.00]` (test set: `[14.00, 15.00]` on both axes), with mean
//! (14.508, 14.493) on the 10,000 test digits and (14.507, 14.496) on the 60,000 training
//! digits. LeCun et al. put the centre of mass *inside the pixel* `(14, 14)`, just below and right
//! of the field's centre (in a convention with pixel centres on integers it rounds to 14): so
//! the target is [`MNIST_CENTRE_OF_MASS`] `= (14.5, 14.5)`, not the field's centre `(14, 14)`,
//! which would move 75% of MNIST's own digits by a pixel. The box around MNIST's non-zero pixels
//! has its longer side 20 px (9,997 test digits) or 19 px (3); its brightest pixel is 255 (8,979)
//! or 254 (1,021); 1.1% of test digits touch the field's border.

use crate::{PIXELS, SIDE};

/// Where MNIST puts a digit's centre of mass, in the convention of the module docs.
pub const MNIST_CENTRE_OF_MASS: (f64, f64) = (14.5, 14.5);
/// The longer sides of the box around a digit's non-zero pixels that MNIST's digits have.
pub const MNIST_BOX_SIDES: std::ops::RangeInclusive<usize> = 19..=20;
/// The dimmest brightest pixel of any MNIST digit (254 of 255): a 28×28 image whose ink peaks
/// below this is not already normalised like MNIST.
pub const MNIST_MIN_PEAK: f32 = 254.0 / 255.0;

/// Slack for "exactly half a pixel away": a centre of mass half a pixel from the target is as
/// well placed as whole-pixel shifts allow on either side, and f32 sums land on either side of
/// the half.
const HALF_PIXEL_SLACK: f64 = 1e-6;

/// Intensity-weighted centre of `pixels` (`width` per row) in the convention of the module
/// docs, or `None` when there is no intensity at all.
pub fn centre_of_mass(pixels: &[f32], width: usize) -> Option<(f64, f64)> {
    let (mut mass, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
    for (i, &v) in pixels.iter().enumerate() {
        let v = f64::from(v);
        mass += v;
        mx += v * ((i % width) as f64 + 0.5);
        my += v * ((i / width) as f64 + 0.5);
    }
    (mass > 0.0).then(|| (mx / mass, my / mass))
}

/// The whole-pixel shift that brings a centre of mass `delta` short of its target nearest to
/// it; 0 when the target is at most half a pixel away (nothing closer is possible).
fn nearest_shift(delta: f64) -> i64 {
    if delta.abs() <= 0.5 + HALF_PIXEL_SLACK {
        0
    } else {
        delta.round() as i64
    }
}

/// Inclusive box `(x0, y0, x1, y1)` of the non-zero pixels of a 28×28 field.
pub(crate) fn nonzero_box(field: &[f32]) -> Option<(usize, usize, usize, usize)> {
    let mut bbox: Option<(usize, usize, usize, usize)> = None;
    for (i, _) in field.iter().enumerate().filter(|(_, &v)| v > 0.0) {
        let (x, y) = (i % SIDE, i / SIDE);
        bbox = Some(match bbox {
            None => (x, y, x, y),
            Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x), y1.max(y)),
        });
    }
    bbox
}

/// Whether a 28×28 field (ink bright, background 0) is already size-normalised like MNIST:
/// its ink peaks at MNIST's level and the box around it is MNIST's size.
pub(crate) fn is_mnist_frame(field: &[f32]) -> bool {
    let peak = field.iter().copied().fold(0.0f32, f32::max);
    let Some((x0, y0, x1, y1)) = nonzero_box(field) else {
        return false;
    };
    peak >= MNIST_MIN_PEAK && MNIST_BOX_SIDES.contains(&(x1 - x0 + 1).max(y1 - y0 + 1))
}

/// Moves a 28×28 field by whole pixels so that its centre of mass lands on
/// [`MNIST_CENTRE_OF_MASS`], as far as that keeps every non-zero pixel in the field. A field
/// already placed as MNIST places its digits is returned unchanged.
pub(crate) fn recentre(field: Vec<f32>) -> Vec<f32> {
    let (Some((cx, cy)), Some((x0, y0, x1, y1))) =
        (centre_of_mass(&field, SIDE), nonzero_box(&field))
    else {
        return field;
    };
    let limit = |shift: i64, low: usize, high: usize| -> i64 {
        shift.clamp(-(low as i64), (SIDE - 1 - high) as i64)
    };
    let dx = limit(nearest_shift(MNIST_CENTRE_OF_MASS.0 - cx), x0, x1);
    let dy = limit(nearest_shift(MNIST_CENTRE_OF_MASS.1 - cy), y0, y1);
    if (dx, dy) == (0, 0) {
        return field;
    }
    let mut moved = vec![0.0f32; PIXELS];
    for (i, &v) in field.iter().enumerate().filter(|(_, &v)| v > 0.0) {
        let x = (i % SIDE) as i64 + dx;
        let y = (i / SIDE) as i64 + dy;
        moved[y as usize * SIDE + x as usize] = v;
    }
    moved
}

/// Places a `width`×`height` patch (ink bright, background 0, at most 28×28) in a 28×28 field so
/// that its centre of mass lands as near [`MNIST_CENTRE_OF_MASS`] as whole-pixel placement allows
/// without pushing any of it out of the field.
pub(crate) fn place(patch: &[f32], width: usize, height: usize) -> Vec<f32> {
    let (cx, cy) =
        centre_of_mass(patch, width).unwrap_or((width as f64 / 2.0, height as f64 / 2.0));
    let offset = |target: f64, com: f64, extent: usize| -> usize {
        nearest_shift(target - com).clamp(0, (SIDE - extent) as i64) as usize
    };
    let left = offset(MNIST_CENTRE_OF_MASS.0, cx, width);
    let top = offset(MNIST_CENTRE_OF_MASS.1, cy, height);
    let mut field = vec![0.0f32; PIXELS];
    for (row, values) in patch.chunks_exact(width).enumerate() {
        let start = (top + row) * SIDE + left;
        field[start..start + width].copy_from_slice(values);
    }
    field
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 20×20 square of ink whose top-left pixel is `(left, top)`.
    fn square(left: usize, top: usize) -> Vec<f32> {
        let mut field = vec![0.0; PIXELS];
        for y in top..top + 20 {
            field[y * SIDE + left..y * SIDE + left + 20].fill(1.0);
        }
        field
    }

    #[test]
    fn centre_of_mass_uses_pixel_centres() {
        // One pixel at column 3, row 5: its centre is (3.5, 5.5).
        let mut field = vec![0.0; PIXELS];
        field[5 * SIDE + 3] = 0.7;
        assert_eq!(centre_of_mass(&field, SIDE), Some((3.5, 5.5)));
        assert_eq!(centre_of_mass(&[0.0; 4], 2), None);
        // A uniform field's centre is the field's centre.
        assert_eq!(centre_of_mass(&[1.0; PIXELS], SIDE), Some((14.0, 14.0)));
    }

    #[test]
    fn a_square_is_moved_onto_the_mnist_centre() {
        // Columns 0..20 have their centre at 10.0; MNIST's is 14.5: 4.5 px right, either 4 or 5.
        let moved = recentre(square(0, 4));
        let (cx, cy) = centre_of_mass(&moved, SIDE).unwrap();
        assert!(
            (cx - 14.5).abs() <= 0.5 && (cy - 14.5).abs() <= 0.5,
            "({cx}, {cy})"
        );
        // Rows 4..24: centre 14.0, half a pixel from 14.5: left where it is.
        assert_eq!(cy, 14.0);
        assert!((14.0..=15.0).contains(&cx));
    }

    #[test]
    fn a_field_placed_like_mnist_is_unchanged() {
        let field = square(5, 5); // centre (15.0, 15.0), within half a pixel of 14.5
        assert_eq!(recentre(field.clone()), field);
        assert!(is_mnist_frame(&field));
    }

    #[test]
    fn shifts_keep_the_ink_in_the_field() {
        // A thin bar on the left edge whose mass sits far from the centre, and ink touching the
        // right edge: no shift may push either off the field.
        let mut field = vec![0.0; PIXELS];
        for y in 0..SIDE {
            field[y * SIDE] = 1.0;
        }
        field[10 * SIDE + SIDE - 1] = 0.1;
        assert_eq!(recentre(field.clone()), field);
    }

    #[test]
    fn placement_puts_the_patch_centre_of_mass_near_the_target() {
        let patch = vec![1.0; 10 * 20];
        let field = place(&patch, 10, 20);
        let (cx, cy) = centre_of_mass(&field, SIDE).unwrap();
        assert!(
            (cx - 14.5).abs() <= 0.5 && (cy - 14.5).abs() <= 0.5,
            "({cx}, {cy})"
        );
    }

    #[test]
    fn only_mnist_sized_bright_digits_count_as_mnist_frames() {
        assert!(!is_mnist_frame(&vec![0.0; PIXELS]));
        let dim: Vec<f32> = square(4, 4).iter().map(|v| v * 0.9).collect();
        assert!(!is_mnist_frame(&dim));
        let mut small = vec![0.0; PIXELS];
        small[14 * SIDE + 14] = 1.0;
        assert!(!is_mnist_frame(&small));
    }
}
