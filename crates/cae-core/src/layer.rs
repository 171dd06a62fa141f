//! One layer's parameters and their names: the one place that spells `encoder.0.weight`.
//!
//! Every learnable tensor of a model belongs to a layer of its encoder or decoder, and is its
//! weight or its bias. [`LayerName`] turns (part, index, kind) into the name the tensor has in a
//! `VarBuilder`, in model files and in optimizer state, and back; [`LayerParams`] holds a loaded
//! layer's tensors under that name. The MLP, the conv net, the parameter list, the fused kernel's
//! gradients and stacking all go through here.
use std::fmt;

use candle_core::{Module, Result, Shape, Tensor};
use candle_nn::{Linear, VarBuilder};

/// Which half of the autoencoder a layer belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Part {
    /// The layers from the input to the code.
    Encoder,
    /// The layers from the code to the reconstruction.
    Decoder,
}

impl Part {
    fn as_str(self) -> &'static str {
        match self {
            Part::Encoder => "encoder",
            Part::Decoder => "decoder",
        }
    }
}

/// Which of a layer's tensors a parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ParamKind {
    /// The weight matrix (or convolution kernel).
    Weight,
    /// The bias vector.
    Bias,
}

impl ParamKind {
    fn as_str(self) -> &'static str {
        match self {
            ParamKind::Weight => "weight",
            ParamKind::Bias => "bias",
        }
    }
}

/// A layer's place in the model (`encoder.0`, `decoder.1`, ...), counted from the input side in
/// each part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LayerName {
    /// Encoder or decoder.
    pub part: Part,
    /// The layer's index within its part.
    pub index: usize,
}

impl LayerName {
    /// Encoder layer `index`.
    pub fn encoder(index: usize) -> Self {
        Self {
            part: Part::Encoder,
            index,
        }
    }

    /// Decoder layer `index`.
    pub fn decoder(index: usize) -> Self {
        Self {
            part: Part::Decoder,
            index,
        }
    }

    /// The full name of this layer's `kind` tensor, e.g. `encoder.0.weight`.
    pub fn param(self, kind: ParamKind) -> String {
        format!("{self}.{}", kind.as_str())
    }

    /// The layer and the kind of tensor a full parameter name denotes, or `None` for a name that
    /// is not a layer's parameter (such as a classifier head's).
    pub fn parse(name: &str) -> Option<(Self, ParamKind)> {
        let mut fields = name.split('.');
        let part = match fields.next()? {
            "encoder" => Part::Encoder,
            "decoder" => Part::Decoder,
            _ => return None,
        };
        let index = fields.next()?.parse().ok()?;
        let kind = match fields.next()? {
            "weight" => ParamKind::Weight,
            "bias" => ParamKind::Bias,
            _ => return None,
        };
        fields
            .next()
            .is_none()
            .then_some((Self { part, index }, kind))
    }

    /// The same layer moved `by` places further from the input within its part.
    pub fn shifted(self, by: usize) -> Self {
        Self {
            index: self.index + by,
            ..self
        }
    }
}

impl fmt::Display for LayerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.part.as_str(), self.index)
    }
}

/// A loaded layer's tensors under its name: the weight (absent for a tied MLP decoder layer, which
/// reuses its mirror encoder layer's weight) and the bias.
#[derive(Debug, Clone)]
pub(crate) struct LayerParams {
    pub name: LayerName,
    pub weight: Option<Tensor>,
    pub bias: Tensor,
}

impl LayerParams {
    /// Reads the layer's tensors from `vb` under its name; `weight_shape: None` for a layer
    /// without a weight of its own.
    pub fn load(
        vb: &VarBuilder,
        name: LayerName,
        weight_shape: Option<Shape>,
        bias_len: usize,
    ) -> Result<Self> {
        let vb = vb.pp(name.to_string());
        Ok(Self {
            name,
            weight: weight_shape
                .map(|shape| vb.get(shape, ParamKind::Weight.as_str()))
                .transpose()?,
            bias: vb.get(bias_len, ParamKind::Bias.as_str())?,
        })
    }

    /// The weight of a layer that has one of its own (every layer but a tied decoder's).
    pub fn weight(&self) -> Result<&Tensor> {
        self.weight.as_ref().ok_or_else(|| {
            candle_core::Error::Msg(format!("layer {} has no weight of its own", self.name))
        })
    }

    /// `x Wᵀ + b` for a fully connected layer, through candle-nn's [`Linear`] (the layer keeps its
    /// tensors rather than a `Linear`, because a tied decoder layer has no weight and a conv layer
    /// is not linear).
    pub fn linear_forward(&self, x: &Tensor) -> Result<Tensor> {
        Linear::new(self.weight()?.clone(), Some(self.bias.clone())).forward(x)
    }

    /// The layer's tensors with their full names, weight first.
    pub fn named(&self) -> impl Iterator<Item = (String, &Tensor)> + '_ {
        let weight = self
            .weight
            .as_ref()
            .map(|w| (self.name.param(ParamKind::Weight), w));
        weight.into_iter().chain(std::iter::once((
            self.name.param(ParamKind::Bias),
            &self.bias,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for layer in [LayerName::encoder(0), LayerName::decoder(12)] {
            for kind in [ParamKind::Weight, ParamKind::Bias] {
                assert_eq!(LayerName::parse(&layer.param(kind)), Some((layer, kind)));
            }
        }
        assert_eq!(
            LayerName::encoder(3).param(ParamKind::Bias),
            "encoder.3.bias"
        );
        for other in [
            "classifier.weight",
            "encoder.x.bias",
            "encoder.0.scale",
            "encoder.0.weight.m",
        ] {
            assert_eq!(LayerName::parse(other), None, "{other}");
        }
    }
}
