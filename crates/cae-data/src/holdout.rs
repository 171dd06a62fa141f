//! A training set and its test set: the source's own test split, a separate source, or a
//! seeded random fraction held out (recorded, so that a run can say which samples it tested on).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::load::LoadOptions;
use crate::source::DatasetSource;
use crate::split::Split;

/// Where the test set comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum TestSplit {
    /// The source's own test split (`t10k-*` IDX files); an error for a source without one.
    Own,
    /// A separate source (a second image folder, `.npy` or CSV file).
    Source(DatasetSource),
    /// A random `fraction` of the samples, drawn reproducibly from `seed`.
    Fraction {
        /// Strictly between 0 and 1.
        fraction: f64,
        /// Seeds the draw.
        seed: u64,
    },
}

/// Which samples a [`TestSplit::Fraction`] held out: enough to redo or record the split.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldOut {
    /// The fraction asked for.
    pub fraction: f64,
    /// The seed of the draw.
    pub seed: u64,
    /// Samples in the source before the split.
    pub total: usize,
    /// Indices (into the source) of the test samples, ascending; the training set is every
    /// other sample, in order.
    pub test_indices: Vec<usize>,
}

impl HeldOut {
    /// Draws `round(fraction · total)` test samples: the first ones of a ChaCha8 permutation
    /// seeded with `seed`, then sorted. Each side must keep at least one sample.
    pub fn draw(fraction: f64, seed: u64, total: usize) -> Result<HeldOut, DataError> {
        let k = (fraction * total as f64).round();
        if !(fraction > 0.0 && fraction < 1.0) || k < 1.0 || k > (total as f64 - 1.0) {
            return Err(DataError::BadTestFraction {
                fraction,
                samples: total,
            });
        }
        let mut order: Vec<usize> = (0..total).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        let mut test_indices = order[..k as usize].to_vec();
        test_indices.sort_unstable();
        Ok(HeldOut {
            fraction,
            seed,
            total,
            test_indices,
        })
    }

    /// Indices of the training samples, ascending.
    pub fn train_indices(&self) -> Vec<usize> {
        let mut is_test = vec![false; self.total];
        for &i in &self.test_indices {
            is_test[i] = true;
        }
        (0..self.total).filter(|&i| !is_test[i]).collect()
    }
}

/// A training set, its test set, and the held-out split when there was one.
#[derive(Debug, Clone)]
pub struct TrainTest {
    /// The training samples.
    pub train: Dataset,
    /// The test samples.
    pub test: Dataset,
    /// Which samples were held out, for [`TestSplit::Fraction`].
    pub held_out: Option<HeldOut>,
}

impl Dataset {
    /// Splits off a seeded random `fraction` as a test set: `(train, test, which)`.
    pub fn hold_out(
        &self,
        fraction: f64,
        seed: u64,
    ) -> Result<(Dataset, Dataset, HeldOut), DataError> {
        let held = HeldOut::draw(fraction, seed, self.len())?;
        let train = self.subset(&held.train_indices())?;
        let test = self.subset(&held.test_indices)?;
        Ok((train, test, held))
    }
}

/// Loads `source`'s training set and the test set `test` names.
pub fn load_train_test(
    source: &DatasetSource,
    test: &TestSplit,
    opts: &LoadOptions,
) -> Result<TrainTest, DataError> {
    let all = Dataset::load(source, Split::Train, opts)?;
    match test {
        TestSplit::Own => Ok(TrainTest {
            test: Dataset::load(source, Split::Test, opts)?,
            train: all,
            held_out: None,
        }),
        TestSplit::Source(other) => Ok(TrainTest {
            test: Dataset::load(other, Split::Train, opts)?,
            train: all,
            held_out: None,
        }),
        TestSplit::Fraction { fraction, seed } => {
            let (train, test, held) = all.hold_out(*fraction, *seed)?;
            Ok(TrainTest {
                train,
                test,
                held_out: Some(held),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_seeded_disjoint_and_complete() {
        let a = HeldOut::draw(0.2, 7, 100).unwrap();
        assert_eq!(a.test_indices.len(), 20);
        assert_eq!(a, HeldOut::draw(0.2, 7, 100).unwrap());
        assert_ne!(
            a.test_indices,
            HeldOut::draw(0.2, 8, 100).unwrap().test_indices
        );
        let train = a.train_indices();
        assert_eq!(train.len(), 80);
        let mut all: Vec<usize> = train.iter().chain(&a.test_indices).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        for bad in [0.0, 1.0, -0.5, f64::NAN, 0.001] {
            assert!(HeldOut::draw(bad, 0, 100).is_err(), "{bad}");
        }
    }

    #[test]
    fn hold_out_keeps_labels_with_their_samples() {
        let images: Vec<u8> = (0..10).collect();
        let labels: Vec<u8> = (0..10).collect();
        let data = Dataset::from_raw(images, labels, 1, 1).unwrap();
        let (train, test, held) = data.hold_out(0.3, 1).unwrap();
        assert_eq!((train.len(), test.len()), (7, 3));
        assert_eq!(
            test.images(),
            &held
                .test_indices
                .iter()
                .map(|&i| i as u8)
                .collect::<Vec<_>>()[..]
        );
        assert_eq!(test.labels(), test.images());
        assert_eq!(train.labels(), train.images());
    }
}
