//! What one sample is: an image (height × width × channels) or a vector of features.

use std::fmt;

/// The shape of one sample.
///
/// Images are stored channels last (interleaved, `[row][column][channel]`), as image files and
/// NumPy's `N×H×W×C` arrays hold them; a batch flattens each sample to [`SampleShape::dim`] values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleShape {
    /// An image.
    Image {
        /// Rows.
        height: usize,
        /// Columns.
        width: usize,
        /// 1 (grey) or more (3 for colour).
        channels: usize,
    },
    /// A vector of this many features (a row of a table, an `N×D` array).
    Features(usize),
}

impl SampleShape {
    /// A grey `height × width` image.
    pub fn grey(height: usize, width: usize) -> Self {
        SampleShape::Image {
            height,
            width,
            channels: 1,
        }
    }

    /// Values per sample: `height · width · channels`, or the number of features.
    pub fn dim(&self) -> usize {
        match *self {
            SampleShape::Image {
                height,
                width,
                channels,
            } => height * width * channels,
            SampleShape::Features(d) => d,
        }
    }

    /// Rows of an image; 1 for features.
    pub fn height(&self) -> usize {
        match *self {
            SampleShape::Image { height, .. } => height,
            SampleShape::Features(_) => 1,
        }
    }

    /// Columns of an image; the number of features for features.
    pub fn width(&self) -> usize {
        match *self {
            SampleShape::Image { width, .. } => width,
            SampleShape::Features(d) => d,
        }
    }

    /// Channels of an image; `None` for features.
    pub fn channels(&self) -> Option<usize> {
        match *self {
            SampleShape::Image { channels, .. } => Some(channels),
            SampleShape::Features(_) => None,
        }
    }
}

impl fmt::Display for SampleShape {
    /// `28×28×1` or `784 features`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SampleShape::Image {
                height,
                width,
                channels,
            } => write!(f, "{height}×{width}×{channels}"),
            SampleShape::Features(d) => write!(f, "{d} features"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims() {
        let rgb = SampleShape::Image {
            height: 4,
            width: 5,
            channels: 3,
        };
        assert_eq!((rgb.dim(), rgb.height(), rgb.width()), (60, 4, 5));
        assert_eq!(rgb.channels(), Some(3));
        assert_eq!(rgb.to_string(), "4×5×3");
        let f = SampleShape::Features(7);
        assert_eq!(
            (f.dim(), f.height(), f.width(), f.channels()),
            (7, 1, 7, None)
        );
        assert_eq!(SampleShape::grey(28, 28).dim(), 784);
    }
}
