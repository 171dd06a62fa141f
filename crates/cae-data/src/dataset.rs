//! A dataset in memory: its values in their compact type, its sample shape, its labels (and
//! class names), and its conversion to `f32` tensors one batch at a time.

use std::ops::Range;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::error::DataError;
use crate::shape::SampleShape;
use crate::storage::{ElementType, Storage};

/// Samples in memory, kept in their compact type ([`Storage`]: 60,000 MNIST images are 47 MB
/// as `u8`, four times that as `f32`), with a label per sample; minibatches are converted to
/// `f32` on the device when needed.
///
/// A dataset knows its [`SampleShape`] and whether its values (as batches hold them) lie in
/// `[0, 1]`. Float values are always finite: every constructor refuses NaN and infinities.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    values: Storage,
    labels: Vec<u8>,
    labelled: bool,
    class_names: Option<Vec<String>>,
    shape: SampleShape,
    /// The smallest and largest value as a batch holds it (bytes scaled by `1/255`); `None` when
    /// there are no values. Found once, when the values are checked for NaN/Inf.
    value_range: Option<(f32, f32)>,
}

// Equality is an equivalence: `Storage` compares floats bit for bit, and `value_range` holds finite
// values only (NaN and infinities are refused), for which `f32`'s `==` is one.
impl Eq for Dataset {}

impl Dataset {
    /// Builds a dataset from `labels.len()` grey images of `rows × cols` bytes each, row-major.
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
        Self::new(
            Storage::U8(images),
            SampleShape::grey(rows, cols),
            Some(labels),
        )
    }

    /// Builds a dataset from values of any shape and type. `labels`: one per sample, or `None`
    /// for unlabelled data (whose [`Dataset::labels`] are then all 0). Float values must be
    /// finite.
    pub fn new(
        values: Storage,
        shape: SampleShape,
        labels: Option<Vec<u8>>,
    ) -> Result<Dataset, DataError> {
        Self::checked(values, shape, labels, Path::new("<memory>"))
    }

    /// [`Dataset::new`], naming `origin` in the error about a non-finite value.
    pub(crate) fn checked(
        values: Storage,
        shape: SampleShape,
        labels: Option<Vec<u8>>,
        origin: &Path,
    ) -> Result<Dataset, DataError> {
        let dim = shape.dim();
        if dim == 0 {
            return Err(DataError::InvalidRaw {
                what: "values per sample (must be positive)",
                expected: 1,
                found: 0,
            });
        }
        let n = match &labels {
            Some(labels) => labels.len(),
            None => values.len() / dim,
        };
        let expected = n.checked_mul(dim);
        if expected != Some(values.len()) {
            return Err(DataError::InvalidRaw {
                what: "values (samples × values per sample)",
                expected: expected.unwrap_or(usize::MAX),
                found: values.len(),
            });
        }
        let labelled = labels.is_some();
        let labels = labels.unwrap_or_else(|| vec![0; n]);
        let value_range = match values.scan() {
            Some(scan) => {
                if let Some((i, value)) = scan.non_finite {
                    return Err(DataError::NonFinite {
                        path: origin.to_path_buf(),
                        sample: i / dim,
                        feature: i % dim,
                        value,
                    });
                }
                Some((scan.min, scan.max))
            }
            None => None,
        };
        Ok(Dataset {
            values,
            labels,
            labelled,
            class_names: None,
            shape,
            value_range,
        })
    }

    /// Names the classes: label `i` is `names[i]`. Every label must have a name.
    pub fn with_class_names(mut self, names: Vec<String>) -> Result<Dataset, DataError> {
        let needed = self.labels.iter().max().map_or(0, |&m| usize::from(m) + 1);
        if names.len() < needed {
            return Err(DataError::InvalidRaw {
                what: "class names (one per label)",
                expected: needed,
                found: names.len(),
            });
        }
        self.class_names = Some(names);
        Ok(self)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// What one sample is.
    pub fn shape(&self) -> SampleShape {
        self.shape
    }

    /// Rows (height) of each image; 1 for features.
    pub fn rows(&self) -> usize {
        self.shape.height()
    }

    /// Columns (width) of each image; the number of features for features.
    pub fn cols(&self) -> usize {
        self.shape.width()
    }

    /// Values per sample (784 for MNIST): `rows · cols · channels`, or the number of features.
    pub fn image_dim(&self) -> usize {
        self.shape.dim()
    }

    /// The values, in their compact type.
    pub fn storage(&self) -> &Storage {
        &self.values
    }

    /// The type the values are kept in.
    pub fn element_type(&self) -> ElementType {
        self.values.element_type()
    }

    /// Whether every value, as a batch holds it, lies in `[0, 1]` (always for bytes, which
    /// batches scale by `1/255`): what a binary cross-entropy loss needs.
    pub fn in_unit_interval(&self) -> bool {
        self.value_range
            .is_none_or(|(min, max)| min >= 0.0 && max <= 1.0)
    }

    /// The smallest and largest value, as a batch holds it (bytes scaled by `1/255`); `None` for a
    /// dataset without values. For a subset ([`Dataset::subset`], a held-out split) it is the
    /// range of the dataset it was taken from, which bounds the subset's.
    pub fn value_range(&self) -> Option<(f32, f32)> {
        self.value_range
    }

    /// All values as bytes, `len() × image_dim()`, sample after sample.
    ///
    /// # Panics
    /// If the values are floats ([`Dataset::element_type`] says which); use
    /// [`Dataset::storage`] or [`Dataset::sample_f32`] for any dataset.
    pub fn images(&self) -> &[u8] {
        match &self.values {
            Storage::U8(v) => v,
            Storage::F32(_) => panic!("Dataset::images on a dataset of floats"),
        }
    }

    /// The bytes of sample `i`. Panics if `i >= len()`, like slice indexing, or if the values
    /// are floats (see [`Dataset::images`]).
    pub fn image(&self, i: usize) -> &[u8] {
        let dim = self.image_dim();
        &self.images()[i * dim..(i + 1) * dim]
    }

    /// Sample `i` as a batch holds it (bytes scaled to `[0, 1]`). Panics if `i >= len()`.
    pub fn sample_f32(&self, i: usize) -> Vec<f32> {
        let dim = self.image_dim();
        let mut out = Vec::with_capacity(dim);
        self.values.extend_f32(i * dim..(i + 1) * dim, &mut out);
        out
    }

    /// The label of each sample (all 0 when the dataset is unlabelled).
    pub fn labels(&self) -> &[u8] {
        &self.labels
    }

    /// Whether the labels came with the data (class folders, a labels file, a label column).
    pub fn is_labelled(&self) -> bool {
        self.labelled
    }

    /// The name of each class, by label, when the source names them (class folder names, text
    /// labels in a CSV column).
    pub fn class_names(&self) -> Option<&[String]> {
        self.class_names.as_deref()
    }

    /// The number of named classes, else `1 + the largest label` (10 for MNIST); 0 when empty
    /// or unlabelled.
    pub fn num_classes(&self) -> usize {
        if !self.labelled {
            return 0;
        }
        match &self.class_names {
            Some(names) => names.len(),
            None => self.labels.iter().max().map_or(0, |&m| m as usize + 1),
        }
    }

    /// The first `n` samples (all of them if `n >= len()`).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        Dataset {
            values: self.values.slice(0..n * self.image_dim()),
            labels: self.labels[..n].to_vec(),
            ..self.with_values_of_subset()
        }
    }

    /// The samples at `indices`, in that order (as the compact type, labels and names kept).
    pub fn subset(&self, indices: &[usize]) -> Result<Dataset, DataError> {
        self.check_indices(indices)?;
        Ok(Dataset {
            values: self.values.gather(indices, self.image_dim()),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            ..self.with_values_of_subset()
        })
    }

    /// A copy without values, to fill in; `value_range` still bounds any subset's values.
    fn with_values_of_subset(&self) -> Dataset {
        Dataset {
            values: Storage::U8(Vec::new()),
            labels: Vec::new(),
            labelled: self.labelled,
            class_names: self.class_names.clone(),
            shape: self.shape,
            value_range: self.value_range,
        }
    }

    fn check_indices(&self, indices: &[usize]) -> Result<(), DataError> {
        match indices.iter().find(|&&i| i >= self.len()) {
            Some(&index) => Err(DataError::IndexOutOfBounds {
                index,
                len: self.len(),
            }),
            None => Ok(()),
        }
    }

    /// Samples `range` as an `f32` tensor of shape `[range.len(), image_dim()]` on `device`:
    /// bytes scaled to `[0, 1]`, floats as they are. An out-of-bounds range is an error.
    pub fn to_tensor(&self, range: Range<usize>, device: &Device) -> candle_core::Result<Tensor> {
        if range.start > range.end || range.end > self.len() {
            candle_core::bail!(
                "sample range {range:?} out of bounds for a dataset of {} samples",
                self.len()
            );
        }
        let dim = self.image_dim();
        let mut out = Vec::with_capacity(range.len() * dim);
        self.values
            .extend_f32(range.start * dim..range.end * dim, &mut out);
        Tensor::from_vec(out, (range.len(), dim), device)
    }

    /// Samples `indices`, in that order, as an `f32` tensor `[indices.len(), image_dim()]`
    /// (bytes scaled to `[0, 1]`, floats as they are). An out-of-bounds index is an error.
    pub fn gather_tensor(&self, indices: &[usize], device: &Device) -> candle_core::Result<Tensor> {
        self.check_indices(indices)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let dim = self.image_dim();
        let mut out = Vec::with_capacity(indices.len() * dim);
        for &i in indices {
            self.values.extend_f32(i * dim..(i + 1) * dim, &mut out);
        }
        Tensor::from_vec(out, (indices.len(), dim), device)
    }
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

    #[test]
    fn floats_are_batched_as_they_are() {
        let values = vec![-1.0, 0.5, 2.0, 3.0, 4.0, -5.0];
        let d = Dataset::new(Storage::F32(values), SampleShape::Features(2), None).unwrap();
        assert_eq!((d.len(), d.image_dim(), d.rows(), d.cols()), (3, 2, 1, 2));
        assert!(!d.in_unit_interval() && !d.is_labelled());
        assert_eq!((d.labels(), d.num_classes()), (&[0u8, 0, 0][..], 0));
        let t = d.to_tensor(1..3, &Device::Cpu).unwrap();
        assert_eq!(t.to_vec2::<f32>().unwrap(), [[2.0, 3.0], [4.0, -5.0]]);
        let g = d.gather_tensor(&[2, 0], &Device::Cpu).unwrap();
        assert_eq!(g.to_vec2::<f32>().unwrap(), [[4.0, -5.0], [-1.0, 0.5]]);
        assert!(d.gather_tensor(&[3], &Device::Cpu).is_err());
        let s = d.subset(&[2, 2]).unwrap();
        assert_eq!(s.storage(), &Storage::F32(vec![4.0, -5.0, 4.0, -5.0]));
        assert!(d.subset(&[3]).is_err());
        assert_eq!(d.take(1).sample_f32(0), [-1.0, 0.5]);

        let nan = Dataset::new(
            Storage::F32(vec![0.0, f32::NAN]),
            SampleShape::Features(1),
            None,
        );
        assert!(matches!(
            nan,
            Err(DataError::NonFinite {
                sample: 1,
                feature: 0,
                ..
            })
        ));
        let ragged = Dataset::new(Storage::F32(vec![0.0; 3]), SampleShape::Features(2), None);
        assert!(ragged.is_err());
    }

    #[test]
    fn class_names_cover_the_labels() {
        let d = Dataset::from_raw(vec![0; 2], vec![0, 2], 1, 1).unwrap();
        assert!(d
            .clone()
            .with_class_names(vec!["a".into(), "b".into()])
            .is_err());
        let named = d
            .with_class_names(vec!["a".into(), "b".into(), "c".into()])
            .unwrap();
        assert_eq!(named.num_classes(), 3);
        assert_eq!(named.subset(&[1]).unwrap().class_names().unwrap().len(), 3);
    }
}
