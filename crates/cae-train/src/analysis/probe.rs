//! The linear probe: how useful codes are as features, measured by the accuracy of a multinomial
//! logistic regression trained on them (and on the raw pixels, the baseline).
use cae_core::ContractiveAutoencoder;
use cae_data::Dataset;
use candle_core::{DType, Device, Tensor, D};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{invalid, EVAL_BATCH};
use crate::TrainError;

/// Minibatch size of the linear probe's gradient descent.
pub const PROBE_BATCH: usize = 256;
/// Seed of the probe's minibatch order (the probe is deterministic).
const PROBE_SEED: u64 = 0x05EE_D0F9_B0BE;

/// Accuracy of a linear classifier trained on some features.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// Share of the training set classified right.
    pub train_accuracy: f64,
    /// Share of the test set classified right.
    pub test_accuracy: f64,
}

/// The codes of all of `data`, `[len, code]`, on `device`, computed [`EVAL_BATCH`] at a time.
pub fn encode_dataset(
    model: &ContractiveAutoencoder,
    data: &Dataset,
    device: &Device,
) -> Result<Tensor, TrainError> {
    let mut parts = Vec::new();
    for batch in data.batches(EVAL_BATCH, device) {
        parts.push(model.encode(&model.prepare_inputs(&batch?.images)?)?);
    }
    if parts.is_empty() {
        return Ok(Tensor::zeros((0, model.code_dim()), DType::F32, device)?);
    }
    Ok(Tensor::cat(&parts, 0)?)
}

fn one_hot(labels: &[u8], classes: usize, device: &Device) -> Result<Tensor, TrainError> {
    let mut y = vec![0f32; labels.len() * classes];
    for (i, &l) in labels.iter().enumerate() {
        if l as usize >= classes {
            return Err(invalid(format!(
                "label {l} is not below classes = {classes}"
            )));
        }
        y[i * classes + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(y, (labels.len(), classes), device)?)
}

fn accuracy(x: &Tensor, w: &Tensor, b: &Tensor, labels: &[u8]) -> Result<f64, TrainError> {
    if labels.is_empty() {
        return Ok(f64::NAN);
    }
    let pred = x
        .matmul(w)?
        .broadcast_add(b)?
        .argmax(D::Minus1)?
        .to_vec1::<u32>()?;
    let hits = pred
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as u32)
        .count();
    Ok(hits as f64 / labels.len() as f64)
}

/// Trains a multinomial logistic regression (softmax over `classes`, weights and biases from zero)
/// on `train_codes` (`[N, F]`) by minibatch gradient descent ([`PROBE_BATCH`] per step, a fixed
/// shuffled order per epoch, so the result is deterministic) for `epochs` passes at rate `lr`, and
/// reports its accuracy on the training and the test set.
///
/// Features are standardised first with the training set's per-feature mean and standard
/// deviation (constant features are left centred), so one `lr` (≈ 0.1–1) suits codes and pixels.
pub fn linear_probe(
    train_codes: &Tensor,
    train_labels: &[u8],
    test_codes: &Tensor,
    test_labels: &[u8],
    classes: usize,
    epochs: usize,
    lr: f64,
) -> Result<ProbeReport, TrainError> {
    let (n, f) = train_codes.dims2()?;
    let (n_test, f_test) = test_codes.dims2()?;
    if n != train_labels.len() || n_test != test_labels.len() || f != f_test {
        return Err(invalid(format!(
            "probe inputs disagree: train [{n}, {f}] with {} labels, test [{n_test}, {f_test}] with {} labels",
            train_labels.len(),
            test_labels.len()
        )));
    }
    if n == 0 || classes < 2 {
        return Err(invalid(
            "the probe needs training samples and at least 2 classes",
        ));
    }
    let device = train_codes.device();
    let train = train_codes.to_dtype(DType::F32)?;
    let test = test_codes.to_dtype(DType::F32)?.to_device(device)?;
    let mean = train.mean_keepdim(0)?;
    let centred = train.broadcast_sub(&mean)?;
    // Constant features stay centred (divided by 1).
    let std: Vec<f32> = centred
        .sqr()?
        .mean(0)?
        .sqrt()?
        .to_vec1::<f32>()?
        .into_iter()
        .map(|s| if s > 1e-6 { s } else { 1.0 })
        .collect();
    let std = Tensor::from_vec(std, (1, f), device)?;
    let train = centred.broadcast_div(&std)?;
    let test = test.broadcast_sub(&mean)?.broadcast_div(&std)?;
    let y = one_hot(train_labels, classes, device)?;

    let mut w = Tensor::zeros((f, classes), DType::F32, device)?;
    let mut b = Tensor::zeros(classes, DType::F32, device)?;
    let mut rng = ChaCha8Rng::seed_from_u64(PROBE_SEED);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for _ in 0..epochs {
        // Fisher–Yates with the probe's own generator.
        for i in (1..n).rev() {
            order.swap(i, rng.random_range(0..=i));
        }
        for chunk in order.chunks(PROBE_BATCH) {
            let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
            let xb = train.index_select(&idx, 0)?;
            let yb = y.index_select(&idx, 0)?;
            let logits = xb.matmul(&w)?.broadcast_add(&b)?;
            let g = (candle_nn::ops::softmax_last_dim(&logits)? - yb)?;
            let scale = lr / chunk.len() as f64;
            w = (w - (xb.t()?.matmul(&g)? * scale)?)?;
            b = (b - (g.sum(0)? * scale)?)?;
        }
    }
    Ok(ProbeReport {
        train_accuracy: accuracy(&train, &w, &b, train_labels)?,
        test_accuracy: accuracy(&test, &w, &b, test_labels)?,
    })
}

fn probe_classes(train: &Dataset, test: &Dataset) -> usize {
    train.num_classes().max(test.num_classes()).max(2)
}

/// [`linear_probe`] on the model's codes of `train` and `test`.
pub fn probe_codes(
    model: &ContractiveAutoencoder,
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f64,
    device: &Device,
) -> Result<ProbeReport, TrainError> {
    linear_probe(
        &encode_dataset(model, train, device)?,
        train.labels(),
        &encode_dataset(model, test, device)?,
        test.labels(),
        probe_classes(train, test),
        epochs,
        lr,
    )
}

/// [`linear_probe`] on the raw pixels of `train` and `test`, the baseline for [`probe_codes`].
pub fn probe_pixels(
    train: &Dataset,
    test: &Dataset,
    epochs: usize,
    lr: f64,
    device: &Device,
) -> Result<ProbeReport, TrainError> {
    linear_probe(
        &train.to_tensor(0..train.len(), device)?,
        train.labels(),
        &test.to_tensor(0..test.len(), device)?,
        test.labels(),
        probe_classes(train, test),
        epochs,
        lr,
    )
}
