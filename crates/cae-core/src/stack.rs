//! Stacked CAEs (Rifai et al. 2011, after Bengio et al. 2007): a one-layer CAE trained on the codes
//! of a trained MLP CAE, composed with it into one deeper MLP model. Its encoder is the stack
//! (`g₂ ∘ g₁`), its decoder the decoders in reverse (`f₁ ∘ σ ∘ f₂`), so every command that takes a
//! model takes a stack.
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::checkpoint::FORMAT_VERSION;
use crate::layer::{LayerName, Part};
use crate::{
    param_specs, write_tensors, Activation, Architecture, CaeConfig, CaeError, LoadedModel,
    MlpConfig, Result, CONFIG_KEY, FORMAT_KEY,
};

/// The configuration of a one-layer CAE that trains on the codes of `base`: input
/// `1 × base.code_dim`, `code_dim` sigmoid code units, tied like `base`.
pub fn layer_on_codes(base: &CaeConfig, code_dim: usize) -> Result<CaeConfig> {
    let mlp = stackable(base)?;
    Ok(CaeConfig {
        height: 1,
        width: mlp.code_dim,
        architecture: Architecture::Mlp(MlpConfig {
            hidden: vec![],
            code_dim,
            hidden_activation: Activation::Sigmoid,
            code_activation: Activation::Sigmoid,
            tied_weights: mlp.tied_weights,
        }),
        penalty: base.penalty,
        init: base.init,
        // Codes are sigmoid units in [0, 1]: the layer reconstructs them with cross-entropy.
        loss: crate::ReconstructionLoss::Bce,
        standardisation: None,
    })
}

/// `base`'s MLP settings, when a layer can be stacked on it: sigmoid code units (the layer above
/// reconstructs them through a sigmoid, with cross-entropy) and, if it has hidden layers, sigmoid
/// hidden units too (one activation for every layer below the code of the stack).
fn stackable(base: &CaeConfig) -> Result<&MlpConfig> {
    let Architecture::Mlp(mlp) = &base.architecture else {
        return Err(CaeError::InvalidConfig(
            "only MLP autoencoders can be stacked on; this one is convolutional".into(),
        ));
    };
    if mlp.code_activation != Activation::Sigmoid
        || (!mlp.hidden.is_empty() && mlp.hidden_activation != Activation::Sigmoid)
    {
        return Err(CaeError::InvalidConfig(format!(
            "a CAE can be stacked only on sigmoid units (their codes are reconstructed through a sigmoid); this one has {} hidden and {} code units",
            mlp.hidden_activation, mlp.code_activation
        )));
    }
    Ok(mlp)
}

/// `top` (a one-layer CAE trained on `base`'s codes, see [`layer_on_codes`]) stacked on `base`:
/// encoder layers `base.encoder.*` then `top.encoder.0`; decoder layers `top.decoder.0` then
/// `base.decoder.*`.
pub fn stack_models(base: &LoadedModel, top: &LoadedModel) -> Result<LoadedModel> {
    let below = stackable(&base.config)?;
    let Architecture::Mlp(above) = &top.config.architecture else {
        return Err(CaeError::InvalidConfig(
            "the layer stacked on top must be a one-layer MLP CAE".into(),
        ));
    };
    if !above.hidden.is_empty() || top.config.input_dim() != below.code_dim {
        return Err(CaeError::InvalidConfig(format!(
            "the layer stacked on top must be a one-layer MLP taking the {} codes below; it takes {} inputs through {} hidden layers",
            below.code_dim,
            top.config.input_dim(),
            above.hidden.len()
        )));
    }
    if above.tied_weights != below.tied_weights {
        return Err(CaeError::InvalidConfig(
            "a stack's layers must all have tied decoder weights or all untied".into(),
        ));
    }
    let below_layers = below.hidden.len() + 1;
    let mut tensors = HashMap::new();
    // The base's decoder layers move one place up (the top's decoder comes first), the top's
    // encoder layer above the base's.
    for (model, moved, by) in [(base, Part::Decoder, 1), (top, Part::Encoder, below_layers)] {
        for (name, t) in &model.tensors {
            let (layer, kind) = LayerName::parse(name).ok_or_else(|| bad_name(name))?;
            let layer = if layer.part == moved {
                layer.shifted(by)
            } else {
                layer
            };
            tensors.insert(layer.param(kind), t.clone());
        }
    }
    let mut hidden = below.hidden.clone();
    hidden.push(below.code_dim);
    let config = CaeConfig {
        architecture: Architecture::Mlp(MlpConfig {
            hidden,
            code_dim: above.code_dim,
            hidden_activation: Activation::Sigmoid,
            code_activation: above.code_activation,
            tied_weights: below.tied_weights,
        }),
        ..base.config.clone()
    };
    config.validate()?;
    Ok(LoadedModel {
        config,
        tensors,
        metadata: HashMap::new(),
    })
}

fn bad_name(name: &str) -> CaeError {
    CaeError::InvalidConfig(format!("unexpected tensor name `{name}` in an MLP model"))
}

impl LoadedModel {
    /// Saves these weights as a model file, atomically, with `extra` metadata (the configuration
    /// and format are added).
    pub fn save(&self, path: &Path, extra: &BTreeMap<String, String>) -> Result<()> {
        let mut tensors = BTreeMap::new();
        for spec in param_specs(&self.config)? {
            let t = self.tensors.get(&spec.name).ok_or_else(|| {
                CaeError::InvalidConfig(format!("the model has no tensor `{}`", spec.name))
            })?;
            tensors.insert(spec.name, t.clone());
        }
        let mut metadata = extra.clone();
        metadata.insert(
            CONFIG_KEY.into(),
            crate::checkpoint::config_json(&self.config),
        );
        metadata.insert(FORMAT_KEY.into(), FORMAT_VERSION.into());
        write_tensors(path, &tensors, &metadata)
    }
}
