//! How a dataset's values are kept: bytes stay bytes and floats stay `f32` (a quarter and the
//! same memory as `f32` batches); either is converted to `f32` one batch at a time.

use std::ops::Range;

/// The values of a dataset, in their compact type, sample after sample.
#[derive(Debug, Clone)]
pub enum Storage {
    /// Bytes (pixels, `uint8` arrays); batches scale them to `[0, 1]` by `1/255`.
    U8(Vec<u8>),
    /// Floats (`float32` arrays, `float64` arrays narrowed to `f32`, CSV tables); batches hold
    /// them as they are.
    F32(Vec<f32>),
}

/// The type a [`Storage`] keeps its values in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// One byte per value.
    U8,
    /// Four bytes per value.
    F32,
}

impl Storage {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Storage::U8(v) => v.len(),
            Storage::F32(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The type the values are kept in.
    pub fn element_type(&self) -> ElementType {
        match self {
            Storage::U8(_) => ElementType::U8,
            Storage::F32(_) => ElementType::F32,
        }
    }

    /// Bytes of memory the values take.
    pub fn bytes(&self) -> usize {
        match self {
            Storage::U8(v) => v.len(),
            Storage::F32(v) => 4 * v.len(),
        }
    }

    /// Appends the values in `range` to `out` as a batch holds them.
    pub(crate) fn extend_f32(&self, range: Range<usize>, out: &mut Vec<f32>) {
        match self {
            Storage::U8(v) => out.extend(v[range].iter().map(|&p| f32::from(p) / 255.0)),
            Storage::F32(v) => out.extend_from_slice(&v[range]),
        }
    }

    /// The values in `range`, in the same type.
    pub(crate) fn slice(&self, range: Range<usize>) -> Storage {
        match self {
            Storage::U8(v) => Storage::U8(v[range].to_vec()),
            Storage::F32(v) => Storage::F32(v[range].to_vec()),
        }
    }

    /// The samples of `dim` values at `indices` (all in bounds), in that order.
    pub(crate) fn gather(&self, indices: &[usize], dim: usize) -> Storage {
        fn pick<T: Copy>(v: &[T], indices: &[usize], dim: usize) -> Vec<T> {
            let mut out = Vec::with_capacity(indices.len() * dim);
            for &i in indices {
                out.extend_from_slice(&v[i * dim..(i + 1) * dim]);
            }
            out
        }
        match self {
            Storage::U8(v) => Storage::U8(pick(v, indices, dim)),
            Storage::F32(v) => Storage::F32(pick(v, indices, dim)),
        }
    }

    /// The smallest and largest value as a batch holds them, and the first non-finite value
    /// (its index and value), if any; `None` when empty.
    pub(crate) fn scan(&self) -> Option<Scan> {
        match self {
            Storage::U8(v) => {
                let (min, max) = (v.iter().min()?, v.iter().max()?);
                Some(Scan {
                    min: f32::from(*min) / 255.0,
                    max: f32::from(*max) / 255.0,
                    non_finite: None,
                })
            }
            Storage::F32(v) => {
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Some(Scan {
                        min: f32::NAN,
                        max: f32::NAN,
                        non_finite: Some((i, v[i])),
                    });
                }
                let first = *v.first()?;
                let (min, max) = v
                    .iter()
                    .fold((first, first), |(lo, hi), &x| (lo.min(x), hi.max(x)));
                Some(Scan {
                    min,
                    max,
                    non_finite: None,
                })
            }
        }
    }
}

/// What [`Storage::scan`] found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    pub(crate) min: f32,
    pub(crate) max: f32,
    pub(crate) non_finite: Option<(usize, f32)>,
}

impl PartialEq for Storage {
    /// Bit for bit, so that equality is an equivalence (and `Eq` holds) for floats too.
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Storage::U8(a), Storage::U8(b)) => a == b,
            (Storage::F32(a), Storage::F32(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
            }
            _ => false,
        }
    }
}

impl Eq for Storage {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_and_scan() {
        let bytes = Storage::U8(vec![0, 51, 255]);
        let mut out = Vec::new();
        bytes.extend_f32(1..3, &mut out);
        assert_eq!(out, [0.2, 1.0]);
        let s = bytes.scan().unwrap();
        assert_eq!((s.min, s.max, s.non_finite), (0.0, 1.0, None));

        let floats = Storage::F32(vec![-2.5, 3.0, 0.5]);
        floats.extend_f32(0..2, &mut out);
        assert_eq!(out, [0.2, 1.0, -2.5, 3.0]);
        let s = floats.scan().unwrap();
        assert_eq!((s.min, s.max), (-2.5, 3.0));
        let nan = Storage::F32(vec![1.0, f32::INFINITY]);
        assert_eq!(nan.scan().unwrap().non_finite, Some((1, f32::INFINITY)));
        assert!(Storage::F32(vec![]).scan().is_none());

        assert_eq!(floats.gather(&[2, 0], 1), Storage::F32(vec![0.5, -2.5]));
        assert_eq!(bytes.slice(0..1), Storage::U8(vec![0]));
        assert_ne!(Storage::U8(vec![1]), Storage::F32(vec![1.0]));
        assert_eq!((floats.bytes(), bytes.bytes()), (12, 3));
    }
}
