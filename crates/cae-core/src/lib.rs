//! Contractive autoencoders (Rifai et al., ICML 2011) on [candle](https://github.com/huggingface/candle),
//! with an exact Jacobian penalty.
//!
//! A CAE learns a code `y = g(x)` and a reconstruction `x' = f(y) ≈ x`, trained on
//! `BCE(x', x) + λ·‖∂g(x)/∂x‖²_F`. The penalty makes the code insensitive to small changes of the input.
//!
//! The penalty is built from ordinary forward tensor ops, so candle's `backward()` differentiates it
//! exactly (candle's autograd cannot differentiate through a gradient):
//! - one-layer encoders use the closed form `Σ_j g'(a_j)² Σ_i W_ji²`;
//! - deeper MLP encoders build the Jacobian's rows from the code side down to the first layer,
//!   then contract them with the first layer's Gram matrix `W₁W₁ᵀ`, computed once per batch;
//! - convolutional encoders use an unbiased Hutchinson estimate `E_v‖J v‖²`, with `J v` exact
//!   (forward tangent propagation), or the exact Jacobian one input pixel at a time.
//!
//! On the CPU, the convolutions, the tangent passes and the deep penalty run on this crate's
//! multi-threaded kernels, as candle custom ops inside candle's graph (autograd works as for any
//! op); [`Kernels`] is the one switch between them and candle's own ops, which CUDA and Metal
//! always use and which the tests use as the reference.
//!
//! # Example
//! ```
//! use cae_core::{CaeConfig, ContractiveAutoencoder};
//! use candle_core::{DType, Device, Tensor};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::Cpu;
//! let config = CaeConfig::preset("small")?;
//! let (model, varmap) = ContractiveAutoencoder::init(&config, 42, DType::F32, &device)?;
//!
//! let x = Tensor::rand(0f32, 1f32, (8, config.input_dim()), &device)?; // a batch of 8 images
//! let code = model.encode(&x)?; // [8, 256]
//! let loss = model.loss(&x, 1e-4)?;
//! let grads = loss.total.backward()?; // hand these to an optimizer over varmap.all_vars()
//! # let _ = (code, grads, varmap);
//! println!("reconstruction {} penalty {}", loss.reconstruction.to_scalar::<f32>()?, loss.penalty.to_scalar::<f32>()?);
//! # Ok(()) }
//! ```
//!
//! # Choosing a preset
//! [`DEFAULT_PRESET`] is the one-hidden-layer 784-1000-784 sigmoid CAE with an untied decoder and
//! Glorot's sigmoid initialisation ([`WeightInit::GlorotUniform`], encoder gain 4, decoder gain 24).
//! With the original program's hyperparameters (Adam, lr 5e-3, batch 600, λ 1e-4, 20 epochs) it
//! reaches test BCE 0.0658 on all 10,000 MNIST test images (PyTorch's default initialisation: 0.0679)
//! at a cost per epoch below the PyTorch reference's, and its penalty is exact and cheap (closed
//! form). The gains were chosen on a validation split (the last 10,000 training images, training
//! on the first 50,000); the test set played no part. See [`PRESETS`] for the others.
#![warn(missing_docs)]

mod activation;
pub mod atomic;
mod bias_op;
mod checkpoint;
mod classifier;
mod config;
mod conv;
mod conv_direct;
mod conv_direct_weight;
mod conv_kernel;
mod conv_op;
mod cpu_op;
mod deep_penalty_op;
mod device;
mod error;
mod fastmath;
mod fused;
mod gradients;
mod hessian;
mod host;
mod init;
mod kernels;
mod layer;
mod loss;
mod matmul;
mod mlp;
mod model;
mod params;
mod reconstruction;
// Exposed with the `bench` feature only, for the benchmarks (crates/cae-train/benches/perf.rs):
// not part of the supported API.
#[cfg(feature = "bench")]
pub mod product_timing;
#[cfg(not(feature = "bench"))]
mod product_timing;
mod simd;
#[cfg(feature = "bench")]
pub mod sparse;
#[cfg(not(feature = "bench"))]
mod sparse;
mod stack;
mod subnormals;
mod tangents;

pub use activation::Activation;
pub use atomic::write_atomic;
pub use checkpoint::{
    model_from_bytes, model_to_bytes, read_model, read_tensors, save_model, tensors_from_bytes,
    tensors_to_bytes, write_tensors, LoadedModel, TensorFile, CONFIG_KEY, FORMAT_KEY,
};
pub use classifier::{
    is_classifier, read_classifier, save_classifier, Classifier, ClassifierConfig,
    LoadedClassifier, ThinningMasks, CLASSIFIER_KEY,
};
pub use config::{
    Architecture, CaeConfig, ConvConfig, ConvLayer, MlpConfig, PenaltyMethod, WeightInit,
    DEFAULT_PRESET, PRESETS,
};
pub use device::{describe as describe_device, device};
pub use error::{CaeError, Result};
pub use gradients::Gradients;
pub use hessian::HessianPenalty;
pub use init::init_varmap;
pub use kernels::Kernels;
pub use layer::{LayerName, ParamKind, Part};
pub use loss::{bce_elements, bce_with_logits, row_means_f64, sum_f64, to_host_f64};
pub use model::{
    ContractiveAutoencoder, Loss, StepOutput, AUTOGRAD_ROWS_PER_PASS, DEFAULT_DTYPE,
    MLP_AUTOGRAD_ROWS_PER_PASS,
};
pub use params::{param_count, param_specs, ParamSpec};
pub use reconstruction::{ReconstructionLoss, Standardisation};
pub use stack::{layer_on_codes, stack_models};
pub use subnormals::{flush_subnormals, flush_subnormals_on_this_thread};
