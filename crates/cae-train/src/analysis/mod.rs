//! The metrics of `cae-cli eval`: how well a trained autoencoder reconstructs, how much its encoder
//! contracts, what its Jacobian looks like, and how useful its codes are as features. One module
//! per measurement; rendering (the table, the plots, the tangent grids) lives apart in `render`.
//!
//! - **Reconstruction** (`reconstruction`): BCE per pixel over a whole set, overall and per class,
//!   and the mean `‖J(x)‖_F`, in one pass ([`reconstruction_by_class`]).
//! - **Contraction** (`contraction`): the finite-difference contraction ratio
//!   `‖f(x) − f(x + r·u)‖ / ‖r·u‖` against the radius `r` ([`contraction_curve`]).
//! - **Spectrum** (`spectrum`): the singular values of `J(x)`, sorted and averaged over points
//!   ([`singular_value_spectrum`]), and how steep they fall ([`SpectrumSignature`]); a CAE
//!   concentrates its sensitivity on a few directions.
//! - **Tangents** (`tangents`): the leading right singular vectors of `J(x)`, the input directions
//!   the code is most sensitive to ([`leading_tangents`]).
//! - **Saturation** (`saturation`): the fraction of code units near 0 or 1 ([`saturation`]).
//! - **Probe** (`probe`): a multinomial logistic-regression probe on the codes or the raw pixels
//!   ([`linear_probe`], [`probe_codes`], [`probe_pixels`]).
//!
//! [`analyse`] runs all of it into an [`EvalReport`] (`report`); [`render_table`] prints reports
//! side by side, [`plot_contraction_curves`] / [`plot_spectra`] draw several models on one figure
//! and [`tangent_grid`] shows tangents as images.

mod contraction;
mod probe;
mod reconstruction;
mod render;
mod report;
mod saturation;
mod spectrum;
mod tangents;

use candle_core::{DType, Tensor};

use crate::TrainError;

pub use contraction::{contraction_curve, contraction_ratios, random_unit_directions};
pub use probe::{
    encode_dataset, linear_probe, probe_codes, probe_pixels, ProbeReport, PROBE_BATCH,
};
pub use reconstruction::{reconstruction_by_class, ReconstructionReport};
pub use render::{
    plot_contraction_curves, plot_spectra, render_table, save_tangent_grid, tangent_grid,
    tangent_to_image, ANALYSIS_PLOT_SIZE, DEFAULT_TANGENTS_PER_DIGIT, DEFAULT_TANGENT_DIGITS,
};
pub use report::{analyse, EvalOptions, EvalReport};
pub use saturation::{
    codes_are_sigmoid, saturation, saturation_of_codes, SATURATION_HIGH, SATURATION_LOW,
};
pub use spectrum::{
    effective_rank, jacobian_singular_values, mean_spectrum, point_spectra,
    singular_value_spectrum, SpectrumSignature, SIGNATURE_RANKS,
};
pub use tangents::leading_tangents;

/// Samples per forward pass when a function walks a whole [`cae_data::Dataset`].
pub const EVAL_BATCH: usize = 1000;

/// An analysis asked for something it cannot measure (no points, a zero count, a bad radius).
fn invalid(message: impl Into<String>) -> TrainError {
    TrainError::InvalidConfig(message.into())
}

/// Every element of `t`, in `f64`, row-major.
fn to_f64_vec(t: &Tensor) -> candle_core::Result<Vec<f64>> {
    t.to_dtype(DType::F64)?.flatten_all()?.to_vec1::<f64>()
}
