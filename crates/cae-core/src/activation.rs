//! The element-wise non-linearities of a layer, with the derivatives the penalties need.
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Element-wise non-linearity of a layer.
///
/// Each one also provides its derivative *as forward tensor ops*, so that the Jacobian penalty built from
/// it is differentiated correctly by candle's ordinary backward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `1 / (1 + e^−a)`.
    Sigmoid,
    /// `tanh(a)`.
    Tanh,
    /// `max(a, 0)`.
    Relu,
    /// `ln(1 + e^a)`.
    Softplus,
    /// `a`.
    Identity,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 5] = [
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Relu,
        Activation::Softplus,
        Activation::Identity,
    ];

    /// `g(a)`, element-wise.
    pub fn apply(self, a: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Sigmoid => candle_nn::ops::sigmoid(a),
            Activation::Tanh => a.tanh(),
            Activation::Relu => a.relu(),
            // log(1 + e^a) = max(a, 0) + log(1 + e^-|a|): no overflow for large |a|.
            Activation::Softplus => a.relu()? + (a.abs()?.neg()?.exp()? + 1.0)?.log()?,
            Activation::Identity => Ok(a.clone()),
        }
    }

    /// g'(a), given the pre-activation `a` and the output `h = g(a)` (reused where it is cheaper).
    pub fn derivative(self, a: &Tensor, h: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Sigmoid => h * (1.0 - h)?,
            Activation::Tanh => 1.0 - h.sqr()?,
            // The step function has zero derivative almost everywhere: nothing to differentiate.
            Activation::Relu => Ok(a.gt(0.0)?.to_dtype(a.dtype())?.detach()),
            Activation::Softplus => candle_nn::ops::sigmoid(a),
            Activation::Identity => a.ones_like(),
        }
    }
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Relu => "relu",
            Activation::Softplus => "softplus",
            Activation::Identity => "identity",
        };
        f.write_str(name)
    }
}
