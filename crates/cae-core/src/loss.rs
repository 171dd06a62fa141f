//! The reconstruction loss (binary cross-entropy from logits) and figures summed in f64.
use candle_core::{DType, Result, Tensor};

/// Binary cross-entropy between `sigmoid(logits)` and `targets` in [0, 1], element by element.
///
/// Computed as `max(z, 0) − z·x + log(1 + e^−|z|)`, which stays finite for any logit
/// (candle-nn's `binary_cross_entropy_with_logit` overflows for |z| ≳ 17–90).
pub fn bce_elements(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let softplus_neg_abs = (logits.abs()?.neg()?.exp()? + 1.0)?.log()?;
    logits.relu()? - (logits * targets)? + softplus_neg_abs
}

/// Mean binary cross-entropy between `sigmoid(logits)` and `targets` in [0, 1], over every element,
/// as a differentiable tensor (see [`bce_elements`]). Its value is a sum in the tensor's dtype;
/// figures that are reported come from [`sum_f64`] instead.
pub fn bce_with_logits(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    bce_elements(logits, targets)?.mean_all()
}

/// The elements of `t`, flattened, on the host as f64: f64 tensors exactly, others through f32
/// (which holds every value of the f32, f16 and bf16 models exactly).
pub fn to_host_f64(t: &Tensor) -> Result<Vec<f64>> {
    let flat = t.flatten_all()?;
    if flat.dtype() == DType::F64 {
        return flat.to_vec1::<f64>();
    }
    Ok(flat
        .to_dtype(DType::F32)?
        .to_vec1::<f32>()?
        .into_iter()
        .map(f64::from)
        .collect())
}

/// The sum of every element of `t`, accumulated in f64 on the host.
///
/// A sum in f32 over one batch's 10⁵–10⁶ loss terms loses about five digits (the test BCE of the
/// default model came out 1.3e-5 relative too low); every loss and metric that is reported is
/// summed here instead.
pub fn sum_f64(t: &Tensor) -> Result<f64> {
    Ok(to_host_f64(t)?.iter().sum())
}

/// Each row's mean of a `[B, ...]` tensor, accumulated in f64: `[B]` values.
pub fn row_means_f64(t: &Tensor) -> Result<Vec<f64>> {
    let rows = t.dim(0)?;
    let values = to_host_f64(t)?;
    let width = values.len() / rows.max(1);
    Ok(values
        .chunks_exact(width.max(1))
        .map(|row| row.iter().sum::<f64>() / width as f64)
        .collect())
}
