//! Minibatches: an epoch's sample order and the conversion of each batch to `f32`.
//!
//! Order. A shuffled epoch's permutation comes from a ChaCha8 generator seeded with the seed
//! and set to stream number `epoch`, so epoch `e` always has the same order for a given seed,
//! whatever was iterated before: a run resumed at epoch 7 sees exactly the batches an
//! uninterrupted run would have seen.
//!
//! Last partial batch. With `n` samples and batch size `b`, an epoch yields `n / b` full batches
//! and, unless [`Batcher::drop_last`] is set, one final smaller batch of the remaining `n % b`
//! samples. Nothing is dropped by default, so evaluation sees every sample exactly once.
//!
//! Conversion is done lazily, one batch per `next()`: 600 × 784 bytes take well under a
//! millisecond (see `benches/data.rs`), far below a training step, so there is no prefetch
//! thread.

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::dataset::Dataset;

/// The default minibatch size (100 batches per MNIST training epoch).
pub const DEFAULT_BATCH_SIZE: usize = 600;

/// Splits a dataset into minibatches, in order or shuffled per epoch.
///
/// ```
/// # use cae_data::{Batcher, Dataset};
/// # use candle_core::Device;
/// let data = Dataset::from_raw(vec![0; 10 * 4], (0..10).collect(), 2, 2)?;
/// let batcher = Batcher::new(4).shuffle(42);
/// assert_eq!(batcher.num_batches(data.len()), 3); // 4 + 4 + 2
/// for batch in batcher.epoch(&data, 0, &Device::Cpu) {
///     let batch = batch?;
///     assert_eq!(batch.images.dims()[1], 4);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batcher {
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
}

impl Default for Batcher {
    fn default() -> Self {
        Self::new(DEFAULT_BATCH_SIZE)
    }
}

impl Batcher {
    /// Sequential batches of `batch_size` samples, last partial batch kept.
    ///
    /// # Panics
    /// If `batch_size` is 0 (validate user input before calling).
    pub fn new(batch_size: usize) -> Self {
        assert!(batch_size > 0, "batch size must be at least 1");
        Self {
            batch_size,
            shuffle: false,
            seed: 0,
            drop_last: false,
        }
    }

    /// Shuffle every epoch, reproducibly from `seed` and the epoch number.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = true;
        self.seed = seed;
        self
    }

    /// Whether to drop the last batch when it is smaller than the batch size.
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// The number of samples in a full batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Whether each epoch is shuffled.
    pub fn is_shuffled(&self) -> bool {
        self.shuffle
    }

    /// The shuffling seed (0 when not shuffled).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Whether a last partial batch is dropped.
    pub fn drops_last(&self) -> bool {
        self.drop_last
    }

    /// Number of batches an epoch over `n` samples yields.
    pub fn num_batches(&self, n: usize) -> usize {
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    /// The order in which epoch `epoch` visits `n` samples (before dropping a partial batch).
    pub fn order(&self, n: usize, epoch: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..n).collect();
        if self.shuffle {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(epoch as u64);
            order.shuffle(&mut rng);
        }
        order
    }

    /// The batches of epoch `epoch` over `data`, each converted to `f32` on `device`.
    pub fn epoch<'a>(&self, data: &'a Dataset, epoch: usize, device: &Device) -> Batches<'a> {
        let order = self.order(data.len(), epoch);
        let end = self.num_batches(data.len()) * self.batch_size;
        Batches {
            data,
            order,
            end: end.min(data.len()),
            pos: 0,
            batch_size: self.batch_size,
            sequential: !self.shuffle,
            device: device.clone(),
        }
    }
}

/// One minibatch.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `f32` `[batch, image_dim]`: bytes scaled to `[0, 1]`, floats as the dataset holds them.
    pub images: Tensor,
    /// The label of each row of `images`.
    pub labels: Vec<u8>,
    /// The index in the dataset of each row of `images`.
    pub indices: Vec<usize>,
}

impl Batch {
    /// Number of samples in the batch.
    pub fn len(&self) -> usize {
        self.indices.len()
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.indices.is_empty()
    }
}

/// Iterator over the batches of one epoch; see [`Batcher::epoch`].
#[derive(Debug)]
pub struct Batches<'a> {
    data: &'a Dataset,
    order: Vec<usize>,
    /// One past the last position of `order` to visit (excludes a dropped partial batch).
    end: usize,
    pos: usize,
    batch_size: usize,
    sequential: bool,
    device: Device,
}

impl Iterator for Batches<'_> {
    type Item = candle_core::Result<Batch>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let stop = (self.pos + self.batch_size).min(self.end);
        let indices = self.order[self.pos..stop].to_vec();
        let range = self.pos..stop;
        self.pos = stop;
        let images = if self.sequential {
            // In order, a batch is one contiguous slice: no gather.
            self.data.to_tensor(range, &self.device)
        } else {
            self.data.gather_tensor(&indices, &self.device)
        };
        let labels = indices.iter().map(|&i| self.data.labels()[i]).collect();
        Some(images.map(|images| Batch {
            images,
            labels,
            indices,
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.end - self.pos).div_ceil(self.batch_size);
        (left, Some(left))
    }
}

impl ExactSizeIterator for Batches<'_> {}

impl Dataset {
    /// Sequential batches over the whole dataset, last partial batch kept: for evaluation.
    ///
    /// # Panics
    /// If `batch_size` is 0.
    pub fn batches<'a>(&'a self, batch_size: usize, device: &Device) -> Batches<'a> {
        Batcher::new(batch_size).epoch(self, 0, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` 1×2 images; image `i` has pixels `[i, i]` and label `i % 10`.
    fn numbered(n: usize) -> Dataset {
        let images = (0..n).flat_map(|i| [i as u8, i as u8]).collect();
        let labels = (0..n).map(|i| (i % 10) as u8).collect();
        Dataset::from_raw(images, labels, 1, 2).unwrap()
    }

    fn epoch_indices(b: &Batcher, data: &Dataset, epoch: usize) -> Vec<Vec<usize>> {
        b.epoch(data, epoch, &Device::Cpu)
            .map(|batch| batch.unwrap().indices)
            .collect()
    }

    #[test]
    fn sequential_keeps_partial_batch() {
        let data = numbered(10);
        let b = Batcher::new(4);
        assert_eq!(b.num_batches(10), 3);
        let batches: Vec<Batch> = b
            .epoch(&data, 0, &Device::Cpu)
            .map(Result::unwrap)
            .collect();
        let sizes: Vec<usize> = batches.iter().map(Batch::len).collect();
        assert_eq!(sizes, [4, 4, 2]);
        assert_eq!(batches[2].indices, [8, 9]);
        assert_eq!(batches[2].labels, [8, 9]);
        assert_eq!(batches[2].images.dims(), &[2, 2]);
        let rows = batches[1].images.to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], [4.0 / 255.0, 4.0 / 255.0]);
        // Same epoch number or not, sequential is sequential.
        assert_eq!(epoch_indices(&b, &data, 0), epoch_indices(&b, &data, 5));
    }

    #[test]
    fn drop_last_drops_only_the_partial_batch() {
        let data = numbered(10);
        let b = Batcher::new(4).drop_last(true);
        assert_eq!(b.num_batches(10), 2);
        assert_eq!(
            epoch_indices(&b, &data, 0),
            [vec![0, 1, 2, 3], vec![4, 5, 6, 7]]
        );
        // Nothing to drop when the size divides evenly.
        let b = Batcher::new(5).drop_last(true);
        assert_eq!(b.epoch(&data, 0, &Device::Cpu).len(), 2);
        // Fewer samples than one batch: nothing at all.
        assert_eq!(
            Batcher::new(20)
                .drop_last(true)
                .epoch(&data, 0, &Device::Cpu)
                .count(),
            0
        );
    }

    #[test]
    fn shuffle_is_reproducible_and_changes_per_epoch() {
        let data = numbered(100);
        let b = Batcher::new(30).shuffle(7);
        let e0 = epoch_indices(&b, &data, 0);
        let e1 = epoch_indices(&b, &data, 1);
        assert_eq!(e0, epoch_indices(&b, &data, 0));
        assert_ne!(e0, e1);
        // Does not depend on earlier epochs having been iterated: a fresh batcher agrees.
        assert_eq!(e1, epoch_indices(&Batcher::new(30).shuffle(7), &data, 1));
        // A different seed gives a different order.
        assert_ne!(e0, epoch_indices(&Batcher::new(30).shuffle(8), &data, 0));

        // Each epoch is a permutation; the last partial batch is kept.
        let mut all: Vec<usize> = e0.concat();
        assert_eq!(
            e0.iter().map(Vec::len).collect::<Vec<_>>(),
            [30, 30, 30, 10]
        );
        all.sort_unstable();
        assert_eq!(all, (0..100).collect::<Vec<_>>());
        assert_ne!(e0.concat(), (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn shuffled_batches_carry_matching_pixels_and_labels() {
        let data = numbered(50);
        for batch in Batcher::new(16).shuffle(3).epoch(&data, 2, &Device::Cpu) {
            let batch = batch.unwrap();
            let rows = batch.images.to_vec2::<f32>().unwrap();
            for ((row, &i), &label) in rows.iter().zip(&batch.indices).zip(&batch.labels) {
                assert_eq!(row[0], i as f32 / 255.0);
                assert_eq!(label as usize, i % 10);
            }
        }
    }

    #[test]
    fn exact_size_and_empty_dataset() {
        let data = numbered(10);
        let mut it = Batcher::new(3).epoch(&data, 0, &Device::Cpu);
        assert_eq!(it.len(), 4);
        it.next();
        assert_eq!(it.len(), 3);
        let empty = numbered(0);
        assert_eq!(Batcher::new(3).epoch(&empty, 0, &Device::Cpu).count(), 0);
        assert_eq!(empty.batches(3, &Device::Cpu).count(), 0);
        assert_eq!(Batcher::default().batch_size(), DEFAULT_BATCH_SIZE);
    }
}
