//! A labelled image dataset in memory, and its conversion to `f32` tensors.

use std::ops::Range;

use candle_core::{Device, Tensor};

use crate::error::DataError;

/// Labelled greyscale images, kept as bytes (60000 MNIST images are 47 MB as `u8`, four times
/// that as `f32`); minibatches are converted to `f32` on the device when needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dataset {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

impl Dataset {
    /// Builds a dataset from `labels.len()` images of `rows × cols` bytes each, row-major.
    pub fn from_raw(
        images: Vec<u8>,
        labels: Vec<u8>,
        rows: usize,
        cols: usize,
    ) -> Result<Dataset, DataError> {
        if rows == 0 || cols == 0 {
            return Err(DataError::InvalidRaw {
                what: "rows × cols (both must be positive)",
                expected: 1,
                found: 0,
            });
        }
        let expected = labels.len().checked_mul(rows * cols);
        if expected != Some(images.len()) {
            return Err(DataError::InvalidRaw {
                what: "image bytes (labels × rows × cols)",
                expected: expected.unwrap_or(usize::MAX),
                found: images.len(),
            });
        }
        Ok(Dataset {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Rows (height) of each image.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns (width) of each image.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Pixels per image: `rows * cols` (784 for MNIST).
    pub fn image_dim(&self) -> usize {
        self.rows * self.cols
    }

    /// All images, `len() × image_dim()` bytes, row-major.
    pub fn images(&self) -> &[u8] {
        &self.images
    }

    /// The label of each sample.
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// The pixels of sample `i`. Panics if `i >= len()`, like slice indexing.
    pub fn image(&self, i: usize) -> &[u8] {
        let dim = self.image_dim();
        &self.images[i * dim..(i + 1) * dim]
    }

    /// `1 + the largest label` (10 for MNIST); 0 when empty.
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |&m| m as usize + 1)
    }

    /// The first `n` samples (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            images: self.images[..n * self.image_dim()].to_vec(),
            labels: self.labels[..n].to_vec(),
            rows: self.rows,
            cols: self.cols,
        }
    }

    /// Samples `range` as an `f32` tensor of shape `[range.len(), image_dim()]`, values in
    /// `[0, 1]`, on `device`. An out-of-bounds range is an error.
    pub fn to_tensor(&self, range: Range<usize>, device: &Device) -> candle_core::Result<Tensor> {
        if range.start > range.end || range.end > self.len() {
            candle_core::bail!(
                "sample range {range:?} out of bounds for a dataset of {} samples",
                self.len()
            );
        }
        let dim = self.image_dim();
        let pixels = &self.images[range.start * dim..range.end * dim];
        Tensor::from_vec(to_unit_f32(pixels), (range.len(), dim), device)
    }

    /// Samples `indices`, in that order, as an `f32` tensor `[indices.len(), image_dim()]` in
    /// `[0, 1]`. An out-of-bounds index is an error.
    pub fn gather_tensor(&self, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        let dim = self.image_dim();
        let mut out = Vec::with_capacity(indices.len() * dim);
        for &i in indices {
            if i >= self.len() {
                candle_core::bail!(
                    "sample index {i} out of bounds for a dataset of {} samples",
                    self.len()
                );
            }
            out.extend(self.image(i).iter().map(|&p| f32::from(p) / 255.0));
        }
        Tensor::from_vec(out, (indices.len(), dim), device)
    }
}

fn to_unit_f32(pixels: &[u8]) -> Vec<f32> {
    pixels.iter().map(|&p| f32::from(p) / 255.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> Dataset {
        // Three 2×2 images whose pixels encode their index.
        let images = vec![0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 255];
        Dataset::from_raw(images, vec![7, 8, 9], 2, 2).unwrap()
    }

    #[test]
    fn from_raw_validates() {
        assert!(matches!(
            Dataset::from_raw(vec![0; 7], vec![0, 1], 2, 2),
            Err(DataError::InvalidRaw {
                expected: 8,
                found: 7,
                ..
            })
        ));
        assert!(Dataset::from_raw(vec![], vec![], 0, 2).is_err());
        let empty = Dataset::from_raw(vec![], vec![], 28, 28).unwrap();
        assert!(empty.is_empty());
        assert_eq!(empty.num_classes(), 0);
    }

    #[test]
    fn accessors_and_take() {
        let d = tiny();
        assert_eq!((d.len(), d.rows(), d.cols(), d.image_dim()), (3, 2, 2, 4));
        assert_eq!(d.image(1), &[10, 11, 12, 13]);
        assert_eq!(d.num_classes(), 10);
        let t = d.take(2);
        assert_eq!(t.len(), 2);
        assert_eq!(t.labels(), &[7, 8]);
        assert_eq!(t.images(), &d.images()[..8]);
        assert_eq!(d.take(100), d);
    }

    #[test]
    fn to_tensor_scales_to_unit_interval() {
        let d = tiny();
        let t = d.to_tensor(1..3, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[2, 4]);
        assert_eq!(t.dtype(), candle_core::DType::F32);
        let v = t.to_vec2::<f32>().unwrap();
        assert_eq!(v[0][0], 10.0 / 255.0);
        assert_eq!(v[1][3], 1.0);
        assert!(d.to_tensor(2..4, &Device::Cpu).is_err());
        assert_eq!(d.to_tensor(3..3, &Device::Cpu).unwrap().dims(), &[0, 4]);

        let g = d.gather_tensor(&[2, 0], &Device::Cpu).unwrap();
        assert_eq!(g.to_vec2::<f32>().unwrap()[1][1], 1.0 / 255.0);
        assert!(d.gather_tensor(&[3], &Device::Cpu).is_err());
    }
}
