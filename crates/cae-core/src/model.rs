//! The contractive autoencoder: forward passes, the CAE objective, and its gradients.
use std::sync::Mutex;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::conv::{ConvNet, ConvTrace};
use crate::fused::{
    one_layer_forward, one_layer_step, tensor, with_host_layer, ForwardOutput, StepBuffers,
};
use crate::gradients::Gradients;
use crate::layer::LayerParams;
use crate::loss::{row_means_f64, sum_f64};
use crate::mlp::{mean_probe_sq_norm, Mlp, Trace};
use crate::reconstruction::{standardise, unstandardise};
use crate::{
    Activation, Architecture, CaeConfig, CaeError, Kernels, PenaltyMethod, ReconstructionLoss,
    Result,
};

/// The terms of the CAE objective for one batch. All are scalars; `total = reconstruction +
/// penalty`.
#[derive(Debug, Clone)]
pub struct Loss {
    /// Mean reconstruction loss per value (the model's [`ReconstructionLoss`]) between the input
    /// and its reconstruction.
    pub reconstruction: Tensor,
    /// The reconstruction loss of every value, `[B, D]`; detached, for reporting: figures are
    /// its sums in f64 ([`crate::sum_f64`]), not `reconstruction`'s value (a sum in f32).
    pub reconstruction_elements: Tensor,
    /// `λ · mean_batch ‖∂code/∂x‖²_F`.
    pub penalty: Tensor,
    /// `reconstruction + penalty`, the objective.
    pub total: Tensor,
    /// `mean_batch ‖∂code/∂x‖²_F` (without λ); detached, for reporting.
    pub jacobian_sq_norm: Tensor,
    /// Per-sample `‖∂code/∂x‖²_F`, `[B]`; detached, for reporting.
    pub sample_jacobian_sq_norms: Tensor,
}

/// One optimisation step's numbers and the gradient of `total` with respect to every parameter.
#[derive(Debug, Clone)]
pub struct StepOutput {
    /// Mean reconstruction loss per value, summed in f64.
    pub reconstruction: f64,
    /// `λ · mean_batch ‖J‖²_F`.
    pub penalty: f64,
    /// `reconstruction + penalty`.
    pub total: f64,
    /// `mean_batch ‖J‖²_F`.
    pub jacobian_sq_norm: f64,
    /// Gradient of `total` with respect to every parameter.
    pub gradients: Gradients,
}

#[derive(Debug, Clone)]
enum Network {
    Mlp(Mlp),
    Conv(ConvNet),
}

enum Encoded {
    Mlp(Trace),
    Conv(ConvTrace),
}

impl Encoded {
    fn code(&self) -> &Tensor {
        match self {
            Encoded::Mlp(t) => &t.code,
            Encoded::Conv(t) => &t.code,
        }
    }
}

/// A contractive autoencoder: `code = g(x)`, `x' = sigmoid(f(code))`, trained on
/// `BCE(x', x) + λ‖∂g/∂x‖²_F`; or, with [`ReconstructionLoss::Mse`], linear outputs
/// `x' = f(code)` trained on the mean squared error.
///
/// Inputs are `[batch, height·width]` tensors in the model's input space: values in [0, 1] for
/// BCE; standardised values for a model that stores a standardisation, which
/// [`Self::prepare_inputs`] applies to data as read.
#[derive(Debug)]
pub struct ContractiveAutoencoder {
    config: CaeConfig,
    network: Network,
    code_dim: usize,
    /// Source of Hutchinson probe vectors; seeded so that runs repeat.
    probe_rng: Mutex<ChaCha8Rng>,
    kernels: Kernels,
    /// The stored standardisation's means and scales as `[1, D]` tensors.
    standardisation: Option<(Tensor, Tensor)>,
    /// The fused one-layer step's intermediate arrays, kept between steps.
    step_buffers: Mutex<StepBuffers>,
}

impl ContractiveAutoencoder {
    /// Builds the model from weights addressed by `VarBuilder` paths (`encoder.0.weight`, ...,
    /// see [`crate::param_specs`]).
    pub fn new(config: &CaeConfig, vb: VarBuilder) -> Result<Self> {
        let code_dim = config.code_dim()?;
        let network = match &config.architecture {
            Architecture::Mlp(m) => Network::Mlp(Mlp::new(config.input_dim(), m, &vb)?),
            Architecture::Conv(c) => {
                Network::Conv(ConvNet::new(config.height, config.width, c, &vb)?)
            }
        };
        let standardisation = match &config.standardisation {
            Some(s) => Some(s.tensors(vb.dtype(), vb.device())?),
            None => None,
        };
        Ok(Self {
            config: config.clone(),
            network,
            code_dim,
            probe_rng: Mutex::new(ChaCha8Rng::seed_from_u64(0)),
            kernels: Kernels::default(),
            standardisation,
            step_buffers: Mutex::default(),
        })
    }

    /// The same model computing with `kernels` ([`Kernels::Fast`] unless changed here).
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.kernels = kernels;
        match &mut self.network {
            Network::Conv(c) => c.set_kernels(kernels),
            Network::Mlp(m) => m.set_kernels(kernels),
        }
        self
    }

    /// The kernels this model computes with.
    pub fn kernels(&self) -> Kernels {
        self.kernels
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &CaeConfig {
        &self.config
    }

    /// The width of the code.
    pub fn code_dim(&self) -> usize {
        self.code_dim
    }

    /// The width of an input (`height · width`).
    pub fn input_dim(&self) -> usize {
        self.config.input_dim()
    }

    /// Restarts the Hutchinson probe sequence from `seed`.
    pub fn set_probe_seed(&self, seed: u64) {
        *self.lock_rng() = ChaCha8Rng::seed_from_u64(seed);
    }

    pub(crate) fn probe_generator(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        self.lock_rng()
    }

    fn lock_rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        // A panic while drawing probes cannot leave the generator in a broken state.
        self.probe_rng.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The code `g(x)`, `[B, code_dim]`.
    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(code) = self.fused_forward(x, ForwardOutput::Code)? {
            return Ok(code);
        }
        Ok(match &self.network {
            Network::Mlp(m) => m.encode(x)?,
            Network::Conv(c) => c.encode(x)?,
        })
    }

    /// The code of a network thinned by dropout below the code: hidden layer `l`'s units (the
    /// layers between the input and the code, of a deep MLP encoder) are multiplied by
    /// `hidden_keep[l]`, `[B, width_l]`. With no masks, [`Self::encode`].
    pub fn encode_thinned(&self, x: &Tensor, hidden_keep: &[Tensor]) -> Result<Tensor> {
        if hidden_keep.is_empty() {
            return self.encode(x);
        }
        let hidden_layers = match &self.network {
            Network::Mlp(m) if hidden_keep.len() <= m.hidden_layers() => {
                return Ok(m.encode_thinned(x, hidden_keep)?);
            }
            Network::Mlp(m) => m.hidden_layers(),
            Network::Conv(_) => 0,
        };
        Err(CaeError::InvalidConfig(format!(
            "{} hidden dropout masks for an encoder with {hidden_layers} fully connected hidden layers below its code",
            hidden_keep.len()
        )))
    }

    /// The widths of the encoder's fully connected hidden layers below the code (empty for a
    /// one-layer or convolutional encoder).
    pub fn hidden_widths(&self) -> Vec<usize> {
        match &self.config.architecture {
            Architecture::Mlp(m) => m.hidden.clone(),
            Architecture::Conv(_) => Vec::new(),
        }
    }

    /// The decoder's outputs `f(code)`, `[B, input_dim]`: logits for BCE, the reconstruction
    /// itself for MSE.
    pub fn decode_logits(&self, code: &Tensor) -> Result<Tensor> {
        Ok(match &self.network {
            Network::Mlp(m) => m.decode_logits(code)?,
            Network::Conv(c) => c.decode_logits(code)?,
        })
    }

    /// The reconstruction from a code, in the model's input space: `sigmoid(f(code))` in [0, 1]
    /// for BCE, `f(code)` for MSE.
    pub fn decode(&self, code: &Tensor) -> Result<Tensor> {
        self.config.loss.reconstruction(&self.decode_logits(code)?)
    }

    /// Reconstruction of `x`, in the model's input space (see [`Self::decode`]).
    pub fn reconstruct(&self, x: &Tensor) -> Result<Tensor> {
        if let Some(reconstruction) = self.fused_forward(x, ForwardOutput::Reconstruction)? {
            return Ok(reconstruction);
        }
        self.decode(&self.encode(x)?)
    }

    /// The forward pass of a one-layer MLP through the fused CPU kernel, for inference: only when
    /// nothing tracks gradients (neither `x` nor any weight is a variable or the result of a
    /// tracked op), so that results used with `backward()` still come from candle's ops.
    fn fused_forward(&self, x: &Tensor, what: ForwardOutput) -> Result<Option<Tensor>> {
        // The fused kernel's reconstruction is a sigmoid's.
        if what == ForwardOutput::Reconstruction && self.config.loss != ReconstructionLoss::Bce {
            return Ok(None);
        }
        let Some((encoder, decoder, activation)) = self.fused_layers(x)? else {
            return Ok(None);
        };
        let tracked = encoder.named().chain(decoder.named());
        if x.track_op() || tracked.into_iter().any(|(_, t)| t.track_op()) {
            return Ok(None);
        }
        let batch = x.dim(0)?;
        let values = with_host_layer(encoder, decoder, activation, x, |layer, xs| {
            one_layer_forward(layer, xs, batch, what)
        })?;
        let width = match what {
            ForwardOutput::Code => encoder.bias.elem_count(),
            ForwardOutput::Reconstruction => decoder.bias.elem_count(),
        };
        Ok(Some(tensor(values, &[batch, width])?))
    }

    /// The one-layer MLP's encoder and decoder layer and its code's activation, when the fused
    /// CPU kernels can take this model and `x` (a `[B, D]` f32 batch on the CPU).
    fn fused_layers(&self, x: &Tensor) -> Result<Option<(&LayerParams, &LayerParams, Activation)>> {
        let Network::Mlp(mlp) = &self.network else {
            return Ok(None);
        };
        let Some((encoder, decoder, activation)) = mlp.one_layer() else {
            return Ok(None);
        };
        if !self.kernels.fast_one_layer(x)
            || x.rank() != 2
            || x.dim(1)? != decoder.bias.elem_count()
        {
            return Ok(None);
        }
        Ok(Some((encoder, decoder, activation)))
    }

    fn encode_traced(&self, x: &Tensor) -> Result<Encoded> {
        Ok(match &self.network {
            Network::Mlp(m) => Encoded::Mlp(m.encode_trace(x)?),
            Network::Conv(c) => Encoded::Conv(c.encode_trace(x)?),
        })
    }

    /// The CAE objective on a batch `x` in the model's input space: mean reconstruction loss +
    /// `lambda` × mean ‖J‖²_F, differentiable by `backward()`.
    pub fn loss(&self, x: &Tensor, lambda: f64) -> Result<Loss> {
        let encoded = self.encode_traced(x)?;
        let outputs = self.decode_logits(encoded.code())?;
        let elements = self.config.loss.elements(&outputs, x)?;
        let reconstruction = elements.mean_all()?;
        let per_sample = self.sq_norm_of(&encoded, x)?;
        let sq_norm = per_sample.mean(0)?;
        let penalty = (&sq_norm * lambda)?;
        let total = (&reconstruction + &penalty)?;
        Ok(Loss {
            reconstruction,
            reconstruction_elements: elements.detach(),
            penalty,
            total,
            jacobian_sq_norm: sq_norm.detach(),
            sample_jacobian_sq_norms: per_sample.detach(),
        })
    }

    /// Each sample's mean reconstruction loss per value (the model's [`ReconstructionLoss`])
    /// between `x`, in the model's input space, and its reconstruction, accumulated in f64: `[B]`
    /// values. Training's per-epoch test figure and `cae-cli eval` both come from here, through
    /// candle's ops (never the fused inference kernel), so that one model gets one figure.
    pub fn sample_reconstruction_loss(&self, x: &Tensor) -> Result<Vec<f64>> {
        let code = match &self.network {
            Network::Mlp(m) => m.encode(x)?,
            Network::Conv(c) => c.encode(x)?,
        };
        let outputs = self.decode_logits(&code)?;
        Ok(row_means_f64(&self.config.loss.elements(&outputs, x)?)?)
    }

    /// Data as read from a dataset or image, `[B, input_dim]`, mapped into the model's input
    /// space: the one place every caller feeding data to the model goes through. A model with a
    /// stored [`crate::Standardisation`] applies it here; others take data as it is.
    pub fn prepare_inputs(&self, x: &Tensor) -> Result<Tensor> {
        match &self.standardisation {
            Some(s) => standardise(&x.to_dtype(s.0.dtype())?, s),
            None => Ok(x.clone()),
        }
    }

    /// A reconstruction from [`Self::reconstruct`] mapped back into the data's units: the inverse
    /// of [`Self::prepare_inputs`].
    pub fn restore_outputs(&self, reconstruction: &Tensor) -> Result<Tensor> {
        match &self.standardisation {
            Some(s) => unstandardise(reconstruction, s),
            None => Ok(reconstruction.clone()),
        }
    }

    /// Every parameter with its `VarBuilder` path (the names of saved tensors).
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        match &self.network {
            Network::Mlp(m) => m.named_parameters(),
            Network::Conv(c) => c.named_parameters(),
        }
    }

    /// The loss of [`Self::loss`] and its gradient with respect to every parameter.
    ///
    /// One-layer MLPs with the exact penalty, on the CPU in f32, use a fused kernel with hand-derived
    /// gradients (several times faster on CPU, checked against autograd in the tests); everything else uses
    /// candle's autograd on [`Self::loss`].
    pub fn loss_and_gradients(&self, x: &Tensor, lambda: f64) -> Result<StepOutput> {
        if let Some(out) = self.fused_step(x, lambda)? {
            return Ok(out);
        }
        self.autograd_step(x, lambda)
    }

    /// [`Self::loss_and_gradients`] always through candle's autograd (the reference for the fused kernel).
    ///
    /// Batches larger than [`Self::autograd_rows_per_pass`] go through in slices, each slice's loss
    /// weighted by its share of the batch and the gradients added: the same gradient as one pass
    /// (the loss is a mean over samples), with the memory of the saved activations bounded by the
    /// slice rather than the batch.
    pub(crate) fn autograd_step(&self, x: &Tensor, lambda: f64) -> Result<StepOutput> {
        self.sliced_autograd_step(x, lambda, |slice| Ok((self.loss(slice, lambda)?, None)))
    }

    /// The step of [`Self::autograd_step`] for an objective of a slice of the batch (a mean over
    /// its samples): the CAE's loss with weight `lambda`, and any further penalty term already
    /// inside the loss's total (a scalar mean over the slice, reported with the penalty).
    pub(crate) fn sliced_autograd_step(
        &self,
        x: &Tensor,
        lambda: f64,
        objective: impl Fn(&Tensor) -> Result<(Loss, Option<Tensor>)>,
    ) -> Result<StepOutput> {
        let batch = x.dim(0)?;
        let parameters = self.named_parameters();
        let mut gradients = Gradients::new(parameters.clone());
        // Summed over the slices in f64, then divided: the reported figures lose no digits.
        let (mut loss_sum, mut loss_terms, mut sq_norm_sum) = (0.0, 0usize, 0.0);
        let mut extra_sum = 0.0;
        let rows_per_pass = self.autograd_rows_per_pass();
        for start in (0..batch.max(1)).step_by(rows_per_pass) {
            let rows = rows_per_pass.min(batch - start);
            // A whole batch is one slice with share 1, exactly as without slicing.
            let share = rows as f64 / batch as f64;
            let (loss, extra) = objective(&x.narrow(0, start, rows)?)?;
            let grads = (&loss.total * share)?.backward()?;
            for (_, t) in &parameters {
                let g = match grads.get(t) {
                    Some(g) => g.clone(),
                    None => t.zeros_like()?,
                };
                gradients.accumulate(t, g)?;
            }
            loss_sum += sum_f64(&loss.reconstruction_elements)?;
            loss_terms += loss.reconstruction_elements.elem_count();
            sq_norm_sum += sum_f64(&loss.sample_jacobian_sq_norms)?;
            if let Some(extra) = &extra {
                extra_sum += sum_f64(extra)? * rows as f64;
            }
        }
        let reconstruction = loss_sum / loss_terms.max(1) as f64;
        let sq_norm = sq_norm_sum / batch.max(1) as f64;
        let penalty = lambda * sq_norm + extra_sum / batch.max(1) as f64;
        Ok(StepOutput {
            reconstruction,
            penalty,
            total: reconstruction + penalty,
            jacobian_sq_norm: sq_norm,
            gradients,
        })
    }

    /// The most samples of one autograd pass for this network: [`AUTOGRAD_ROWS_PER_PASS`], or
    /// [`MLP_AUTOGRAD_ROWS_PER_PASS`] for an MLP.
    pub fn autograd_rows_per_pass(&self) -> usize {
        match self.network {
            Network::Mlp(_) => MLP_AUTOGRAD_ROWS_PER_PASS,
            Network::Conv(_) => AUTOGRAD_ROWS_PER_PASS,
        }
    }

    fn fused_step(&self, x: &Tensor, lambda: f64) -> Result<Option<StepOutput>> {
        // The fused kernel's gradients are those of the exact penalty and the BCE loss.
        if self.config.penalty != PenaltyMethod::Exact
            || self.config.loss != ReconstructionLoss::Bce
        {
            return Ok(None);
        }
        let Some((encoder, decoder, activation)) = self.fused_layers(x)? else {
            return Ok(None);
        };
        let batch = x.dim(0)?;
        let step = with_host_layer(encoder, decoder, activation, x, |layer, xs| {
            let mut buffers = self.step_buffers.lock().unwrap_or_else(|e| e.into_inner());
            one_layer_step(layer, xs, batch, lambda, &mut buffers)
        })?;
        let mut gradients = Gradients::new(self.named_parameters());
        let mut set = |parameter: &Tensor, values: Vec<f32>| -> Result<()> {
            Ok(gradients.accumulate(parameter, tensor(values, parameter.dims())?)?)
        };
        set(encoder.weight()?, step.grad_w)?;
        set(&encoder.bias, step.grad_b)?;
        if let (Some(gv), Some(v)) = (step.grad_v, &decoder.weight) {
            set(v, gv)?;
        }
        set(&decoder.bias, step.grad_c)?;
        let penalty = lambda * step.sq_norm_mean;
        Ok(Some(StepOutput {
            reconstruction: step.bce,
            penalty,
            total: step.bce + penalty,
            jacobian_sq_norm: step.sq_norm_mean,
            gradients,
        }))
    }

    /// Per-sample `‖∂code/∂x‖²_F`, `[B]`, by the configured [`PenaltyMethod`].
    pub fn jacobian_sq_norm(&self, x: &Tensor) -> Result<Tensor> {
        let encoded = self.encode_traced(x)?;
        self.sq_norm_of(&encoded, x)
    }

    fn sq_norm_of(&self, encoded: &Encoded, x: &Tensor) -> Result<Tensor> {
        Ok(match (self.config.penalty, encoded) {
            (PenaltyMethod::Exact, Encoded::Mlp(trace)) => self.mlp().jacobian_sq_norm(trace)?,
            (PenaltyMethod::Exact, Encoded::Conv(_)) => {
                self.jacobian_of(encoded, x)?.sqr()?.sum((1, 2))?
            }
            (PenaltyMethod::Hutchinson { probes }, _) => {
                let v = self.rademacher(probes, x)?;
                mean_probe_sq_norm(&self.jvp_of(encoded, &v)?)?
            }
        })
    }

    /// The MLP network, for the penalties and products defined on MLP encoders only.
    pub(crate) fn mlp_network(&self) -> Option<&Mlp> {
        match &self.network {
            Network::Mlp(m) => Some(m),
            Network::Conv(_) => None,
        }
    }

    fn mlp(&self) -> &Mlp {
        match &self.network {
            Network::Mlp(m) => m,
            Network::Conv(_) => unreachable!("an MLP trace comes only from an MLP network"),
        }
    }

    fn jvp_of(&self, encoded: &Encoded, v: &Tensor) -> Result<Tensor> {
        Ok(match (&self.network, encoded) {
            (Network::Mlp(m), Encoded::Mlp(t)) => m.jvp(t, v)?,
            (Network::Conv(c), Encoded::Conv(t)) => c.jvp(t, v)?,
            _ => unreachable!("a trace always comes from its own network"),
        })
    }

    /// `J v` for probe vectors `v: [P, B, input_dim]` → `[P, B, code_dim]`, exact (forward tangents).
    pub fn jvp(&self, x: &Tensor, v: &Tensor) -> Result<Tensor> {
        let encoded = self.encode_traced(x)?;
        self.jvp_of(&encoded, v)
    }

    /// The code `[B, code_dim]` and [`Self::jvp`] from one pass through the encoder: for a loss
    /// that needs both, the encoder's products are computed (and differentiated) once, not twice.
    pub fn code_and_jvp(&self, x: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let encoded = self.encode_traced(x)?;
        let jv = self.jvp_of(&encoded, v)?;
        Ok((encoded.code().clone(), jv))
    }

    /// The full per-sample Jacobian `∂code/∂x`, `[B, code_dim, input_dim]`. Meant for analysis of small batches.
    pub fn jacobian(&self, x: &Tensor) -> Result<Tensor> {
        let encoded = self.encode_traced(x)?;
        self.jacobian_of(&encoded, x)
    }

    fn jacobian_of(&self, encoded: &Encoded, x: &Tensor) -> Result<Tensor> {
        Ok(match (&self.network, encoded) {
            (Network::Mlp(m), Encoded::Mlp(t)) => m.jacobian(t)?,
            _ => {
                // One tangent per input pixel: J e_i is column i of J.
                let (b, d) = x.dims2()?;
                let eye = Tensor::eye(d, x.dtype(), x.device())?;
                let basis = eye.unsqueeze(1)?.broadcast_as((d, b, d))?.contiguous()?;
                let cols = self.jvp_of(encoded, &basis)?; // [D, B, C]
                cols.permute((1, 2, 0))?.contiguous()?
            }
        })
    }

    /// `count` Rademacher (±1) probe vectors per sample, `[count, B, input_dim]`, from the model's seeded generator.
    fn rademacher(&self, count: usize, x: &Tensor) -> Result<Tensor> {
        let (b, d) = x.dims2()?;
        let mut rng = self.lock_rng();
        let signs: Vec<f32> = (0..count * b * d)
            .map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 })
            .collect();
        Ok(Tensor::from_vec(signs, (count, b, d), &Device::Cpu)?
            .to_dtype(x.dtype())?
            .to_device(x.device())?)
    }
}

impl Module for ContractiveAutoencoder {
    /// Reconstruction of `x`, in the model's input space.
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        self.reconstruct(x).map_err(|e| match e {
            crate::CaeError::Candle(e) => e,
            other => candle_core::Error::Msg(other.to_string()),
        })
    }
}

/// The most samples one autograd pass of [`ContractiveAutoencoder::loss_and_gradients`] takes
/// (larger batches go through in slices of this size).
/// candle keeps every intermediate of the graph, and every gradient, until the pass ends: for the
/// conv preset (4 Hutchinson probes) a 600-sample pass peaked at 954 MiB of resident memory.
/// Slices of this size keep the same products per task (the conv kernels work 8 samples at a time,
/// the deep penalty's products stay thousands of rows tall).
pub const AUTOGRAD_ROWS_PER_PASS: usize = 200;

/// [`AUTOGRAD_ROWS_PER_PASS`] for MLP encoders, whose passes keep less per sample: fewer passes
/// redo less per-pass work (the deep preset's penalty forms its first layer's Gram matrix, and
/// that matrix's gradient through the layer, once per pass). The deep preset, 20 steps of 600
/// images, three rounds alternated on the 2-core machine: 200 rows 5.60, 4.99, 5.23 s (peak RSS
/// 278–285 MiB); 300 rows 5.09, 4.82, 4.88 s (311 MiB); 600 rows 5.12, 4.91, 5.20 s (582 MiB).
pub const MLP_AUTOGRAD_ROWS_PER_PASS: usize = 300;

/// The dtype a model computes in unless told otherwise.
pub const DEFAULT_DTYPE: DType = DType::F32;
