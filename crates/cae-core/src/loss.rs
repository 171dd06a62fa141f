use candle_core::{Result, Tensor};

/// Mean binary cross-entropy between `sigmoid(logits)` and `targets` in [0, 1], over every element.
///
/// Computed as `max(z, 0) − z·x + log(1 + e^−|z|)`, which stays finite for any logit
/// (candle-nn's `binary_cross_entropy_with_logit` overflows for |z| ≳ 17–90).
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    (logits.relu()? - (logits * targets)? + softplus_neg_abs)?.mean_all()
}
