//! The list of a configuration's parameters: names, shapes and fan-ins, before any tensor exists.
use crate::layer::{LayerName, ParamKind};
use crate::{Architecture, CaeConfig, Result};

/// One learnable tensor of a model: the name it has in a `VarBuilder` and in saved files, its shape,
/// and the fan-in that scales its initialisation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamSpec {
    /// The full name, `layer.param(kind)` (`encoder.0.weight`, ...).
    pub name: String,
    /// The layer the tensor belongs to.
    pub layer: LayerName,
    /// Weight or bias.
    pub kind: ParamKind,
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// The fan-in that scales its initialisation.
    pub fan_in: usize,
}

/// Every parameter a configuration needs, in a fixed order (the order of seeded initialisation).
pub fn param_specs(config: &CaeConfig) -> Result<Vec<ParamSpec>> {
    config.validate()?;
    let mut specs = Vec::new();
    let mut push = |layer: LayerName, kind: ParamKind, shape: Vec<usize>, fan_in: usize| {
        specs.push(ParamSpec {
            name: layer.param(kind),
            layer,
            kind,
            shape,
            fan_in,
        })
    };
    let (weight, bias) = (ParamKind::Weight, ParamKind::Bias);
    match &config.architecture {
        Architecture::Mlp(m) => {
            let sizes = mlp_sizes(config.input_dim(), &m.hidden, m.code_dim);
            for (i, pair) in sizes.windows(2).enumerate() {
                push(
                    LayerName::encoder(i),
                    weight,
                    vec![pair[1], pair[0]],
                    pair[0],
                );
                push(LayerName::encoder(i), bias, vec![pair[1]], pair[0]);
            }
            let rev: Vec<usize> = sizes.iter().rev().copied().collect();
            for (i, pair) in rev.windows(2).enumerate() {
                if !m.tied_weights {
                    push(
                        LayerName::decoder(i),
                        weight,
                        vec![pair[1], pair[0]],
                        pair[0],
                    );
                }
                push(LayerName::decoder(i), bias, vec![pair[1]], pair[0]);
            }
        }
        Architecture::Conv(c) => {
            let mut in_c = 1;
            for (i, l) in c.encoder.iter().enumerate() {
                let fan_in = in_c * l.kernel * l.kernel;
                push(
                    LayerName::encoder(i),
                    weight,
                    vec![l.out_channels, in_c, l.kernel, l.kernel],
                    fan_in,
                );
                push(LayerName::encoder(i), bias, vec![l.out_channels], fan_in);
                in_c = l.out_channels;
            }
            for (i, l) in c.decoder.iter().enumerate() {
                // PyTorch's ConvTranspose2d computes its init fan-in from the weight's dim 1 (out channels).
                let fan_in = l.out_channels * l.kernel * l.kernel;
                push(
                    LayerName::decoder(i),
                    weight,
                    vec![in_c, l.out_channels, l.kernel, l.kernel],
                    fan_in,
                );
                push(LayerName::decoder(i), bias, vec![l.out_channels], fan_in);
                in_c = l.out_channels;
            }
        }
    }
    Ok(specs)
}

/// `[input, hidden..., code]`.
pub(crate) fn mlp_sizes(input_dim: usize, hidden: &[usize], code_dim: usize) -> Vec<usize> {
    std::iter::once(input_dim)
        .chain(hidden.iter().copied())
        .chain(std::iter::once(code_dim))
        .collect()
}

/// Number of scalar parameters.
pub fn param_count(config: &CaeConfig) -> Result<usize> {
    Ok(param_specs(config)?
        .iter()
        .map(|s| s.shape.iter().product::<usize>())
        .sum())
}
