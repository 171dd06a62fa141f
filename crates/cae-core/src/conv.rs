//! Convolutional encoder / transposed-convolution decoder, with forward tangent propagation.
use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::layer::{LayerName, LayerParams, Part};
use crate::{Activation, ConvConfig, ConvLayer, Kernels};

/// A conv layer: its tensors under their names, and its stride.
#[derive(Debug, Clone)]
struct ConvParams {
    params: LayerParams,
    stride: usize,
}

impl ConvParams {
    fn load(vb: &VarBuilder, name: LayerName, l: &ConvLayer, in_c: usize) -> Result<Self> {
        // A transposed convolution's weight is [in, out, k, k].
        let shape = match name.part {
            Part::Encoder => (l.out_channels, in_c, l.kernel, l.kernel),
            Part::Decoder => (in_c, l.out_channels, l.kernel, l.kernel),
        };
        Ok(Self {
            params: LayerParams::load(vb, name, Some(shape.into()), l.out_channels)?,
            stride: l.stride,
        })
    }

    fn weight(&self) -> Result<&Tensor> {
        self.params.weight()
    }

    fn bias(&self) -> &Tensor {
        &self.params.bias
    }
}

/// Pre-activation derivatives of every encoder layer, `[B, C_l, H_l, W_l]`, and the flattened code.
#[derive(Debug)]
pub(crate) struct ConvTrace {
    pub derivatives: Vec<Tensor>,
    pub code: Tensor,
}

#[derive(Debug, Clone)]
pub(crate) struct ConvNet {
    encoder: Vec<ConvParams>,
    decoder: Vec<ConvParams>,
    activation: Activation,
    height: usize,
    width: usize,
    code_shape: (usize, usize, usize),
    kernels: Kernels,
}

impl ConvNet {
    pub fn new(height: usize, width: usize, cfg: &ConvConfig, vb: &VarBuilder) -> Result<Self> {
        let code_shape = cfg
            .code_shape(height, width)
            .map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let mut in_c = 1;
        let mut encoder = Vec::new();
        for (i, l) in cfg.encoder.iter().enumerate() {
            encoder.push(ConvParams::load(vb, LayerName::encoder(i), l, in_c)?);
            in_c = l.out_channels;
        }
        let mut decoder = Vec::new();
        for (i, l) in cfg.decoder.iter().enumerate() {
            decoder.push(ConvParams::load(vb, LayerName::decoder(i), l, in_c)?);
            in_c = l.out_channels;
        }
        Ok(Self {
            encoder,
            decoder,
            activation: cfg.activation,
            height,
            width,
            code_shape,
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
            .flat_map(|l| l.params.named())
            .map(|(name, t)| (name, t.clone()))
            .collect()
    }

    /// An encoder layer's pre-activation `W ⋆ h + b`.
    fn pre_activation(&self, h: &Tensor, layer: &ConvParams) -> Result<Tensor> {
        let z = self.kernels.conv2d(h, layer.weight()?, layer.stride)?;
        self.kernels.add_channel_bias(&z, layer.bias())
    }

    fn image(&self, x: &Tensor) -> Result<Tensor> {
        let b = x.dim(0)?;
        x.reshape((b, 1, self.height, self.width))
    }

    pub fn encode_trace(&self, x: &Tensor) -> Result<ConvTrace> {
        let mut h = self.image(x)?;
        let mut derivatives = Vec::with_capacity(self.encoder.len());
        for layer in &self.encoder {
            let a = self.pre_activation(&h, layer)?;
            h = self.activation.apply(&a)?;
            derivatives.push(self.activation.derivative(&a, &h)?);
        }
        let b = h.dim(0)?;
        Ok(ConvTrace {
            derivatives,
            code: h.reshape((b, ()))?,
        })
    }

    pub fn encode(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = self.image(x)?;
        for layer in &self.encoder {
            let a = self.pre_activation(&h, layer)?;
            h = self.activation.apply(&a)?;
        }
        let b = h.dim(0)?;
        h.reshape((b, ()))
    }

    pub fn decode_logits(&self, code: &Tensor) -> Result<Tensor> {
        let b = code.dim(0)?;
        let (c, hh, ww) = self.code_shape;
        let mut h = code.reshape((b, c, hh, ww))?;
        let n = self.decoder.len();
        for (i, layer) in self.decoder.iter().enumerate() {
            let z = self.kernels.add_channel_bias(
                &self
                    .kernels
                    .conv_transpose2d(&h, layer.weight()?, layer.stride)?,
                layer.bias(),
            )?;
            h = if i + 1 == n {
                z
            } else {
                self.activation.apply(&z)?
            };
        }
        h.reshape((b, ()))
    }

    /// `J v` for probes `v: [P, B, input]` → `[P, B, code]`: the encoder's convolutions (without biases)
    /// applied to the tangents, each scaled by the layer's `g'(a)`.
    pub fn jvp(&self, trace: &ConvTrace, probes: &Tensor) -> Result<Tensor> {
        let (p, b, _) = probes.dims3()?;
        let mut t = probes.reshape((p * b, 1, self.height, self.width))?;
        for (layer, d) in self.encoder.iter().zip(&trace.derivatives) {
            t = self
                .kernels
                .scaled_conv2d(&t, layer.weight()?, d, layer.stride)?;
        }
        t.reshape((p, b, ()))
    }
}
