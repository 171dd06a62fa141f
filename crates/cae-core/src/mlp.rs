//! Fully connected encoder/decoder and the exact Jacobian of its encoder.
use candle_core::{Result, Tensor, D};
use candle_nn::VarBuilder;

use crate::layer::{LayerName, LayerParams};
use crate::params::mlp_sizes;
use crate::{Activation, Kernels, MlpConfig};

/// What the encoder computed on the way to the code, kept for the penalty.
#[derive(Debug)]
pub(crate) struct Trace {
    /// `g'(a_l)` for every encoder layer, `[B, width_l]`.
    pub derivatives: Vec<Tensor>,
    pub code: Tensor,
}

#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    /// Every encoder layer has a weight of its own.
    encoder: Vec<LayerParams>,
    /// Tied decoder layers have no weight: the mirror encoder layer's is reused transposed.
    decoder: Vec<LayerParams>,
    hidden_activation: Activation,
    code_activation: Activation,
    kernels: Kernels,
}

impl Mlp {
    pub fn new(input_dim: usize, cfg: &MlpConfig, vb: &VarBuilder) -> Result<Self> {
        let sizes = mlp_sizes(input_dim, &cfg.hidden, cfg.code_dim);
        let mut encoder = Vec::new();
        for (i, p) in sizes.windows(2).enumerate() {
            let shape = Some((p[1], p[0]).into());
            encoder.push(LayerParams::load(vb, LayerName::encoder(i), shape, p[1])?);
        }
        let rev: Vec<usize> = sizes.iter().rev().copied().collect();
        let mut decoder = Vec::new();
        for (i, p) in rev.windows(2).enumerate() {
            let shape = (!cfg.tied_weights).then(|| (p[1], p[0]).into());
            decoder.push(LayerParams::load(vb, LayerName::decoder(i), shape, p[1])?);
        }
        Ok(Self {
            encoder,
            decoder,
            hidden_activation: cfg.hidden_activation,
            code_activation: cfg.code_activation,
            kernels: Kernels::default(),
        })
    }

    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.kernels = kernels;
    }

    /// Every parameter with its `VarBuilder` path.
    pub fn named_parameters(&self) -> Vec<(String, Tensor)> {
        self.encoder
            .iter()
            .chain(&self.decoder)
            .flat_map(LayerParams::named)
            .map(|(name, t)| (name, t.clone()))
            .collect()
    }

    /// For a one-layer network: its encoder and decoder layer, and the code's activation.
    pub fn one_layer(&self) -> Option<(&LayerParams, &LayerParams, Activation)> {
        match (self.encoder.as_slice(), self.decoder.as_slice()) {
            ([encoder], [decoder]) => Some((encoder, decoder, self.code_activation)),
            _ => None,
        }
    }

    /// Encoder layer `l`'s weight (every encoder layer has one).
    fn weight(&self, l: usize) -> Result<&Tensor> {
        self.encoder[l].weight()
    }

    fn activation(&self, layer: usize) -> Activation {
        if layer + 1 == self.encoder.len() {
            self.code_activation
        } else {
            self.hidden_activation
        }
    }

    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        self.encode_thinned(x, &[])
    }

    /// How many hidden layers lie between the input and the code.
    pub fn hidden_layers(&self) -> usize {
        self.encoder.len() - 1
    }

    /// The code with hidden layer `l`'s units multiplied by `hidden_keep[l]` (dropout masks,
    /// `[B, width_l]`, at most [`Self::hidden_layers`] of them); layers past the masks given are
    /// not thinned.
    pub fn encode_thinned(&self, x: &Tensor, hidden_keep: &[Tensor]) -> Result<Tensor> {
        let mut h = x.clone();
        for (l, layer) in self.encoder.iter().enumerate() {
            h = self.activation(l).apply(&layer.linear_forward(&h)?)?;
            if let Some(keep) = hidden_keep.get(l) {
                h = (h * keep)?;
            }
        }
        Ok(h)
    }

    pub fn encode_trace(&self, x: &Tensor) -> Result<Trace> {
        let mut h = x.clone();
        let mut derivatives = Vec::with_capacity(self.encoder.len());
        for (l, layer) in self.encoder.iter().enumerate() {
            let act = self.activation(l);
            let a = layer.linear_forward(&h)?;
            h = act.apply(&a)?;
            derivatives.push(act.derivative(&a, &h)?);
        }
        Ok(Trace {
            derivatives,
            code: h,
        })
    }

    pub fn decode_logits(&self, code: &Tensor) -> Result<Tensor> {
        let n = self.decoder.len();
        let mut h = code.clone();
        for (i, layer) in self.decoder.iter().enumerate() {
            let z = match &layer.weight {
                Some(_) => layer.linear_forward(&h)?,
                // Tied: decoder layer i mirrors encoder layer n-1-i, whose weight is [out, in].
                None => h
                    .matmul(self.weight(n - 1 - i)?)?
                    .broadcast_add(&layer.bias)?,
            };
            h = if i + 1 == n {
                z
            } else {
                self.hidden_activation.apply(&z)?
            };
        }
        Ok(h)
    }

    /// Per-sample `‖J‖²_F`, `[B]`, exact.
    ///
    /// One layer: the closed form `Σ_j g'(a_j)² Σ_i W_ji²`, O(B·H + H·D). Deeper, with a code and a
    /// first layer narrower than the input: the rows of the Jacobian down to the first layer, then
    /// its Gram matrix (see [`crate::deep_penalty_op`]). Otherwise the Jacobian itself, built by
    /// propagating tangents through the narrower side.
    pub fn jacobian_sq_norm(&self, trace: &Trace) -> Result<Tensor> {
        if let [layer] = self.encoder.as_slice() {
            let row_sq = layer.weight()?.sqr()?.sum_keepdim(1)?; // [H, 1]
            return trace.derivatives[0].sqr()?.matmul(&row_sq)?.squeeze(1);
        }
        let d = &trace.derivatives;
        let first = self.weight(0)?; // [H_1, input]
        let (width, input) = first.dims2()?;
        let code = d[d.len() - 1].dim(1)?;
        if code > input || width >= input {
            return self.jacobian(trace)?.sqr()?.sum((1, 2));
        }
        // J = P W_1 with P = D_L W_L ⋯ D_2 W_2 D_1, [code, H_1] per sample, so
        // ‖J‖² = tr(P (W_1 W_1ᵀ) Pᵀ): the Gram matrix G = W_1 W_1ᵀ is one product for the whole
        // batch, and each sample then costs code·H_1² multiply-adds instead of code·H_1·input.
        let weights = (0..d.len())
            .map(|l| self.weight(l))
            .collect::<Result<Vec<_>>>()?;
        self.kernels.deep_penalty(d, &weights)
    }

    /// Per-sample Jacobian `∂code/∂x`, `[B, code, input]`.
    pub fn jacobian(&self, trace: &Trace) -> Result<Tensor> {
        let d = &trace.derivatives;
        let w = |l: usize| self.weight(l);
        let last = self.encoder.len() - 1;
        let (batch, code) = d[last].dims2()?;
        let input = w(0)?.dim(1)?;
        if code <= input {
            // Rows: J = D_L W_L ⋯ D_1 W_1, multiplied from the code side; C tangents per sample.
            let mut m = d[last]
                .unsqueeze(2)?
                .broadcast_mul(&w(last)?.unsqueeze(0)?)?;
            for l in (0..last).rev() {
                let m_scaled = m.broadcast_mul(&d[l].unsqueeze(1)?)?;
                let width = m_scaled.dim(2)?;
                m = m_scaled
                    .reshape((batch * code, width))?
                    .matmul(w(l)?)?
                    .reshape((batch, code, w(l)?.dim(1)?))?;
            }
            Ok(m)
        } else {
            // Columns: Jᵀ = W_1ᵀ D_1 ⋯ W_Lᵀ D_L, multiplied from the input side; D tangents per sample.
            let mut t = w(0)?
                .t()?
                .unsqueeze(0)?
                .broadcast_mul(&d[0].unsqueeze(1)?)?;
            for (l, d_l) in d.iter().enumerate().skip(1) {
                let width = t.dim(2)?;
                t = t
                    .reshape((batch * input, width))?
                    .matmul(&w(l)?.t()?)?
                    .reshape((batch, input, w(l)?.dim(0)?))?
                    .broadcast_mul(&d_l.unsqueeze(1)?)?;
            }
            t.transpose(1, 2)?.contiguous()
        }
    }

    /// `J v` for probes `v: [P, B, input]` → `[P, B, code]`, by forward tangent propagation.
    pub fn jvp(&self, trace: &Trace, probes: &Tensor) -> Result<Tensor> {
        let (p, b, input) = probes.dims3()?;
        let mut t = probes.reshape((p * b, input))?;
        for (l, layer) in self.encoder.iter().enumerate() {
            let weight = layer.weight()?;
            let width = weight.dim(0)?;
            t = t
                .matmul(&weight.t()?)?
                .reshape((p, b, width))?
                .broadcast_mul(&trace.derivatives[l].unsqueeze(0)?)?
                .reshape((p * b, width))?;
        }
        t.reshape((p, b, ()))
    }
}

impl Mlp {
    /// Per-sample `‖J(x₁) − J(x₂)‖²_F`, `[B]`, from the traces of two batches of inputs, exact.
    ///
    /// One layer: `J(x) = diag(g'(a)) W`, so the difference is `Σ_j (g'(a₁)_j − g'(a₂)_j)² ‖W_j‖²`,
    /// the closed form of the first-order penalty with the derivatives' difference in place of the
    /// derivatives. Deeper: the two Jacobians, subtracted.
    pub fn jacobian_difference_sq_norm(&self, first: &Trace, second: &Trace) -> Result<Tensor> {
        if let [layer] = self.encoder.as_slice() {
            let row_sq = layer.weight()?.sqr()?.sum_keepdim(1)?; // [H, 1]
            let diff = (&first.derivatives[0] - &second.derivatives[0])?;
            return diff.sqr()?.matmul(&row_sq)?.squeeze(1);
        }
        (self.jacobian(first)? - self.jacobian(second)?)?
            .sqr()?
            .sum((1, 2))
    }

    /// `Jᵀ u` for code-space vectors `u: [P, B, code]` → `[P, B, input]`, by propagating them
    /// from the code down to the input (`Jᵀ = W_1ᵀ D_1 ⋯ W_Lᵀ D_L`).
    pub fn vjp(&self, trace: &Trace, u: &Tensor) -> Result<Tensor> {
        let (p, b, code) = u.dims3()?;
        let mut t = u.reshape((p * b, code))?;
        for (l, layer) in self.encoder.iter().enumerate().rev() {
            let width = t.dim(1)?;
            t = t
                .reshape((p, b, width))?
                .broadcast_mul(&trace.derivatives[l].unsqueeze(0)?)?
                .reshape((p * b, width))?
                .matmul(layer.weight()?)?;
        }
        t.reshape((p, b, ()))
    }
}

/// Last-axis helper shared by the model: sum of squares per sample of a `[P, B, C]` tangent batch → `[B]`.
pub(crate) fn mean_probe_sq_norm(jv: &Tensor) -> Result<Tensor> {
    jv.sqr()?.sum(D::Minus1)?.mean(0)
}
