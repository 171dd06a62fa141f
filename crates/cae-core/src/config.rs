//! A model's configuration (architecture, penalty, initialisation) and the named presets.
use serde::{Deserialize, Serialize};

use crate::{Activation, CaeError, ReconstructionLoss, Result, Standardisation};

/// A complete description of a contractive autoencoder: with it and the weights, a model is fully defined.
/// It is stored in the metadata of every saved model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaeConfig {
    /// Input image height (MNIST: 28). Inputs are flattened to `height * width` values (in [0, 1]
    /// for the binary cross-entropy loss).
    pub height: usize,
    /// Input image width (MNIST: 28).
    pub width: usize,
    /// The encoder/decoder family and its layers.
    pub architecture: Architecture,
    /// How the Jacobian penalty is computed.
    pub penalty: PenaltyMethod,
    /// How fresh weights are drawn; files written before this option existed used PyTorch's default.
    #[serde(default)]
    pub init: WeightInit,
    /// The reconstruction loss and its output units; binary cross-entropy unless written.
    #[serde(default, skip_serializing_if = "ReconstructionLoss::is_bce")]
    pub loss: ReconstructionLoss,
    /// The standardisation applied to every input before the encoder (MSE models only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardisation: Option<Standardisation>,
}

/// The distribution of freshly initialised weights (see [`crate::init_varmap`]).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WeightInit {
    /// PyTorch's default for linear and conv layers: weights and biases `U(±1/√fan_in)`.
    #[default]
    Pytorch,
    /// Glorot & Bengio (2010): weights `U(±gain·√(6 / (fan_in + fan_out)))`, biases zero, with one
    /// gain for the encoder's weights and one for the decoder's. Gain 4 is their recommendation for
    /// sigmoid units (and what the Theano tutorials' denoising and contractive autoencoders used).
    GlorotUniform {
        /// The gain of the encoder's weights.
        encoder_gain: f64,
        /// The gain of the decoder's weights.
        decoder_gain: f64,
    },
}

/// The encoder/decoder family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Architecture {
    /// Fully connected layers.
    Mlp(MlpConfig),
    /// Convolutions and transposed convolutions.
    Conv(ConvConfig),
}

/// Fully connected encoder `input -> hidden[0] -> ... -> code`, mirrored decoder, logits at the output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Widths of the encoder's hidden layers (may be empty: one-layer encoder).
    pub hidden: Vec<usize>,
    /// The width of the code.
    pub code_dim: usize,
    /// The activation of the hidden layers, encoder's and decoder's.
    pub hidden_activation: Activation,
    /// The activation of the code.
    pub code_activation: Activation,
    /// Decoder layer `l` reuses the transpose of the mirrored encoder weight (Rifai et al. 2011); biases stay separate.
    pub tied_weights: bool,
}

/// One convolution (encoder) or transposed convolution (decoder) layer, no padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConvLayer {
    /// Output channels.
    pub out_channels: usize,
    /// Kernel side (square kernels).
    pub kernel: usize,
    /// Stride, the same along both axes.
    pub stride: usize,
}

/// Convolutional encoder (single input channel), transposed-convolution decoder ending in one channel of logits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConvConfig {
    /// The encoder's convolutions, from the input.
    pub encoder: Vec<ConvLayer>,
    /// The decoder's transposed convolutions, from the code.
    pub decoder: Vec<ConvLayer>,
    /// The activation of every layer but the output.
    pub activation: Activation,
}

/// How `‖∂code/∂x‖²_F` is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PenaltyMethod {
    /// Exact: closed form for one layer, tangent propagation through the narrower side for deeper MLPs,
    /// one tangent per input pixel for conv encoders (exact but costly; use for small inputs).
    Exact,
    /// Unbiased Hutchinson estimate `E_v ‖J v‖²` with `probes` Rademacher vectors per sample; `J v` is exact.
    Hutchinson {
        /// Probe vectors per sample.
        probes: usize,
    },
}

/// The named configurations users pick with `--preset`.
pub const PRESETS: [(&str, &str); 8] = [
    (
        "rifai2011-untied",
        "784-1000-784, sigmoid, untied decoder, Glorot init (gains 4/24), exact closed-form penalty (the default: test BCE 0.0658 in 20 epochs)",
    ),
    (
        "rifai2011",
        "784-1000-784, sigmoid, tied decoder weights as in Rifai et al. 2011, exact closed-form penalty; at λ 1e-3 the CAE's signature (a steep Jacobian spectrum, tangents along the digit's strokes) and the best features for fine-tuning",
    ),
    (
        "wide",
        "784-2000-784, sigmoid, untied decoder, exact closed-form penalty (more capacity, about 2x the time)",
    ),
    ("small", "784-256-784, sigmoid, untied, exact closed-form penalty (fast)"),
    (
        "softplus1000",
        "784-1000-784, softplus code units, untied, exact closed-form penalty",
    ),
    (
        "relu1000",
        "784-1000-784, ReLU code units, untied, exact closed-form penalty",
    ),
    (
        "deep",
        "784-512-128-32 MLP with a bottleneck, softplus hidden, sigmoid code, exact penalty through the first layer's Gram matrix",
    ),
    (
        "conv",
        "the original program's conv encoder/decoder (code 64x4x4), ReLU, Hutchinson penalty with 4 probes (about 1 s per 600-sample step on 2 CPU cores)",
    ),
];

/// The preset `cae-cli train` uses when none is named.
pub const DEFAULT_PRESET: &str = "rifai2011-untied";

impl CaeConfig {
    /// A named preset for 28×28 inputs; see [`PRESETS`].
    pub fn preset(name: &str) -> Result<Self> {
        let mlp = |hidden: Vec<usize>, code_dim, hidden_activation, tied_weights| MlpConfig {
            hidden,
            code_dim,
            hidden_activation,
            code_activation: Activation::Sigmoid,
            tied_weights,
        };
        let (architecture, penalty) = match name {
            "rifai2011-untied" => (
                Architecture::Mlp(mlp(vec![], 1000, Activation::Sigmoid, false)),
                PenaltyMethod::Exact,
            ),
            "rifai2011" => (
                Architecture::Mlp(mlp(vec![], 1000, Activation::Sigmoid, true)),
                PenaltyMethod::Exact,
            ),
            "wide" => (
                Architecture::Mlp(mlp(vec![], 2000, Activation::Sigmoid, false)),
                PenaltyMethod::Exact,
            ),
            "small" => (
                Architecture::Mlp(mlp(vec![], 256, Activation::Sigmoid, false)),
                PenaltyMethod::Exact,
            ),
            "softplus1000" | "relu1000" => {
                let act = if name == "relu1000" {
                    Activation::Relu
                } else {
                    Activation::Softplus
                };
                (
                    Architecture::Mlp(MlpConfig {
                        code_activation: act,
                        ..mlp(vec![], 1000, act, false)
                    }),
                    PenaltyMethod::Exact,
                )
            }
            "deep" => (
                Architecture::Mlp(mlp(vec![512, 128], 32, Activation::Softplus, false)),
                PenaltyMethod::Exact,
            ),
            "conv" => (
                Architecture::Conv(ConvConfig::original_program()),
                PenaltyMethod::Hutchinson { probes: 4 },
            ),
            other => {
                let names: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
                return Err(CaeError::InvalidConfig(format!(
                    "unknown preset `{other}`; choose one of: {}",
                    names.join(", ")
                )));
            }
        };
        // The default starts from Glorot's sigmoid initialisation, with gains chosen on a
        // validation split (see the crate docs); the other presets keep PyTorch's default, which
        // those gains were not validated for.
        let init = if name == DEFAULT_PRESET {
            WeightInit::GlorotUniform {
                encoder_gain: 4.0,
                decoder_gain: 24.0,
            }
        } else {
            WeightInit::Pytorch
        };
        Ok(Self {
            height: 28,
            width: 28,
            architecture,
            penalty,
            init,
            loss: ReconstructionLoss::Bce,
            standardisation: None,
        })
    }

    /// The width of a flattened input, `height · width`.
    pub fn input_dim(&self) -> usize {
        self.height * self.width
    }

    /// Size of the code, checking the configuration on the way.
    pub fn code_dim(&self) -> Result<usize> {
        self.validate()?;
        Ok(match &self.architecture {
            Architecture::Mlp(m) => m.code_dim,
            Architecture::Conv(c) => {
                let (ch, h, w) = c.code_shape(self.height, self.width)?;
                ch * h * w
            }
        })
    }

    /// Checks sizes, layer shapes and the penalty settings; the error says what to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(CaeError::InvalidConfig(m));
        if self.height == 0 || self.width == 0 {
            return bad(format!(
                "input size {}x{} must be positive",
                self.height, self.width
            ));
        }
        if let Some(standardisation) = &self.standardisation {
            if self.loss == ReconstructionLoss::Bce {
                return bad("standardised inputs are not in [0, 1], which the binary cross-entropy loss needs; standardisation goes with the squared error".into());
            }
            standardisation.validate(self.input_dim())?;
        }
        if let PenaltyMethod::Hutchinson { probes: 0 } = self.penalty {
            return bad("the Hutchinson penalty needs at least one probe".into());
        }
        match &self.architecture {
            Architecture::Mlp(m) => {
                if m.code_dim == 0 || m.hidden.contains(&0) {
                    return bad(format!(
                        "layer sizes must be positive (hidden {:?}, code {})",
                        m.hidden, m.code_dim
                    ));
                }
            }
            Architecture::Conv(c) => {
                let (_, h, w) = c.code_shape(self.height, self.width)?;
                let out = c.decoded_shape(h, w)?;
                if out != (1, self.height, self.width) {
                    return bad(format!(
                        "the conv decoder produces {out:?} (channels, height, width) from the code; it must produce (1, {}, {})",
                        self.height, self.width
                    ));
                }
            }
        }
        Ok(())
    }
}

impl ConvConfig {
    /// The original PyTorch program's network: Conv 1→8 k3, 8→16 k5, 16→32 k5 s2, 32→64 k2 s2 (ReLU);
    /// ConvT 64→16 k3 s2, 16→8 k5 s2, 8→1 k8, sigmoid output.
    pub fn original_program() -> Self {
        let l = |out_channels, kernel, stride| ConvLayer {
            out_channels,
            kernel,
            stride,
        };
        Self {
            encoder: vec![l(8, 3, 1), l(16, 5, 1), l(32, 5, 2), l(64, 2, 2)],
            decoder: vec![l(16, 3, 2), l(8, 5, 2), l(1, 8, 1)],
            activation: Activation::Relu,
        }
    }

    /// (channels, height, width) of the code for an input of `height × width`.
    pub fn code_shape(&self, height: usize, width: usize) -> Result<(usize, usize, usize)> {
        if self.encoder.is_empty() || self.decoder.is_empty() {
            return Err(CaeError::InvalidConfig(
                "a conv network needs at least one encoder and one decoder layer".into(),
            ));
        }
        let (mut c, mut h, mut w) = (1, height, width);
        for (i, l) in self.encoder.iter().enumerate() {
            if l.out_channels == 0 || l.kernel == 0 || l.stride == 0 || l.kernel > h || l.kernel > w
            {
                return Err(CaeError::InvalidConfig(format!(
                    "encoder conv layer {i} ({l:?}) does not fit its {c}x{h}x{w} input"
                )));
            }
            c = l.out_channels;
            h = (h - l.kernel) / l.stride + 1;
            w = (w - l.kernel) / l.stride + 1;
        }
        Ok((c, h, w))
    }

    fn decoded_shape(&self, mut h: usize, mut w: usize) -> Result<(usize, usize, usize)> {
        let mut c = 0;
        for (i, l) in self.decoder.iter().enumerate() {
            if l.out_channels == 0 || l.kernel == 0 || l.stride == 0 {
                return Err(CaeError::InvalidConfig(format!(
                    "decoder layer {i} ({l:?}) has a zero size"
                )));
            }
            c = l.out_channels;
            h = (h - 1) * l.stride + l.kernel;
            w = (w - 1) * l.stride + l.kernel;
        }
        Ok((c, h, w))
    }
}
