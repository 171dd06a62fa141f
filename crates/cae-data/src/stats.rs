//! Per-feature mean and standard deviation over a dataset, summed in `f64`: what a
//! standardisation for a mean-squared-error loss on real-valued data is fitted with.

use crate::dataset::Dataset;

/// The mean and (population) standard deviation of each feature, over the values as batches
/// hold them (bytes scaled to `[0, 1]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStats {
    /// The mean of each feature.
    pub mean: Vec<f64>,
    /// The standard deviation of each feature, dividing by N (as scikit-learn's
    /// `StandardScaler` does).
    pub std: Vec<f64>,
}

impl Dataset {
    /// Each feature's mean and standard deviation, in two passes summed in `f64`; `None` when
    /// the dataset is empty.
    pub fn feature_stats(&self) -> Option<FeatureStats> {
        let (n, dim) = (self.len(), self.image_dim());
        if n == 0 {
            return None;
        }
        let mut mean = vec![0f64; dim];
        for i in 0..n {
            for (m, x) in mean.iter_mut().zip(self.sample_f32(i)) {
                *m += f64::from(x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut var = vec![0f64; dim];
        for i in 0..n {
            for ((v, m), x) in var.iter_mut().zip(&mean).zip(self.sample_f32(i)) {
                let d = f64::from(x) - m;
                *v += d * d;
            }
        }
        let std = var.into_iter().map(|v| (v / n as f64).sqrt()).collect();
        Some(FeatureStats { mean, std })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SampleShape, Storage};

    #[test]
    fn against_a_closed_form() {
        // Feature 0: 1, 2, 3, 4 (mean 2.5, variance 1.25); feature 1: constant 7.
        let values = vec![1.0, 7.0, 2.0, 7.0, 3.0, 7.0, 4.0, 7.0];
        let data = Dataset::new(Storage::F32(values), SampleShape::Features(2), None).unwrap();
        let stats = data.feature_stats().unwrap();
        assert_eq!(stats.mean, [2.5, 7.0]);
        assert!((stats.std[0] - 1.25f64.sqrt()).abs() < 1e-12);
        assert_eq!(stats.std[1], 0.0);

        let bytes = Dataset::from_raw(vec![0, 255], vec![0, 0], 1, 1).unwrap();
        let stats = bytes.feature_stats().unwrap();
        assert_eq!((stats.mean[0], stats.std[0]), (0.5, 0.5));
        assert!(bytes.take(0).feature_stats().is_none());
    }
}
