//! A classifier on a CAE's encoder: `p(y | x) = softmax(V g(x) + c)`, the network the papers
//! fine-tune after pretraining (Rifai et al. 2011), with the Manifold Tangent Classifier's
//! tangent-propagation penalty.
//!
//! A classifier file is a model file (the CAE's tensors and [`CONFIG_KEY`], so its encoder can be
//! read like any model) plus `classifier.weight` `[classes, code]`, `classifier.bias` `[classes]`
//! and the [`ClassifierConfig`] as JSON under [`CLASSIFIER_KEY`].
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{weights_on, FORMAT_VERSION};
use crate::{
    model_from_bytes, param_specs, tensors_from_bytes, write_tensors, CaeConfig, CaeError,
    ContractiveAutoencoder, Result, CONFIG_KEY, FORMAT_KEY,
};

/// Metadata key holding a classifier file's [`ClassifierConfig`] as JSON.
pub const CLASSIFIER_KEY: &str = "cae.classifier";
const HEAD_WEIGHT: &str = "classifier.weight";
const HEAD_BIAS: &str = "classifier.bias";

/// What a classifier file holds besides the CAE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// How many classes the softmax layer tells apart.
    pub classes: usize,
}

/// The dropout masks of one training step of a [`Classifier`] (see
/// [`Classifier::dropout_cross_entropy`]); `None` or no mask where a layer is not thinned.
#[derive(Debug, Clone, Default)]
pub struct ThinningMasks {
    /// `[B, input]`, on the inputs as prepared.
    pub input: Option<Tensor>,
    /// `[B, width_l]` for the encoder's hidden layers below the code, from the input side (a
    /// stacked encoder's lower codes); fewer masks than layers leave the layers above unthinned.
    pub hidden: Vec<Tensor>,
    /// `[B, code]`, on the code (the softmax layer's input).
    pub code: Option<Tensor>,
}

/// The encoder of a CAE and a softmax layer on its code.
#[derive(Debug)]
pub struct Classifier {
    cae: ContractiveAutoencoder,
    weight: Tensor,
    bias: Tensor,
}

impl Classifier {
    /// Builds the classifier from weights addressed by `VarBuilder` paths: the CAE's own and
    /// `classifier.weight`, `classifier.bias`.
    pub fn new(config: &CaeConfig, classes: usize, vb: VarBuilder) -> Result<Self> {
        if classes < 2 {
            return Err(CaeError::InvalidConfig(format!(
                "a classifier needs at least 2 classes, got {classes}"
            )));
        }
        let cae = ContractiveAutoencoder::new(config, vb.clone())?;
        let code = cae.code_dim();
        Ok(Self {
            weight: vb.get((classes, code), HEAD_WEIGHT)?,
            bias: vb.get(classes, HEAD_BIAS)?,
            cae,
        })
    }

    /// Adds a fresh softmax layer for `classes` classes on the code of `config` to `varmap`
    /// (Glorot-uniform weights from `seed`, zero biases).
    pub fn init_head(
        varmap: &VarMap,
        config: &CaeConfig,
        classes: usize,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<()> {
        let code = config.code_dim()?;
        let bound = (6.0 / (code + classes) as f64).sqrt();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let w: Vec<f64> = (0..classes * code)
            .map(|_| rng.random_range(-bound..bound))
            .collect();
        let mut vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        let w = Tensor::from_vec(w, (classes, code), &Device::Cpu)?.to_dtype(dtype)?;
        vars.insert(HEAD_WEIGHT.into(), Var::from_tensor(&w.to_device(device)?)?);
        let b = Tensor::zeros(classes, dtype, device)?;
        vars.insert(HEAD_BIAS.into(), Var::from_tensor(&b)?);
        Ok(())
    }

    /// The autoencoder whose encoder the classifier uses.
    pub fn autoencoder(&self) -> &ContractiveAutoencoder {
        &self.cae
    }

    /// How many classes it tells apart.
    pub fn classes(&self) -> usize {
        self.weight.dim(0).unwrap_or(0)
    }

    /// Class scores before the softmax, `[B, classes]`, of data as read: the encoder's stored
    /// standardisation, if any, is applied first ([`ContractiveAutoencoder::prepare_inputs`]).
    pub fn logits(&self, x: &Tensor) -> Result<Tensor> {
        self.head(&self.cae.encode(&self.cae.prepare_inputs(x)?)?)
    }

    fn head(&self, code: &Tensor) -> Result<Tensor> {
        Ok(code.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)?)
    }

    /// Class probabilities, `[B, classes]`. Built from `log_softmax` (ordinary ops) because
    /// candle's fused `softmax_last_dim` passes no gradient back, and the tangent-propagation
    /// penalty is differentiated through the probabilities.
    pub fn probabilities(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::log_softmax(&self.logits(x)?, D::Minus1)?.exp()?)
    }

    /// The most probable class of each row, `[B]`.
    pub fn predict(&self, x: &Tensor) -> Result<Vec<u32>> {
        Ok(self.logits(x)?.argmax(D::Minus1)?.to_vec1::<u32>()?)
    }

    /// Mean cross-entropy `−log p(y | x)` over the batch; `labels` are class indices (`u32`, `[B]`).
    pub fn cross_entropy(&self, x: &Tensor, labels: &Tensor) -> Result<Tensor> {
        self.dropout_cross_entropy(x, labels, &ThinningMasks::default())
    }

    /// [`Self::cross_entropy`] of the network thinned by dropout masks (training only): the
    /// encoder's inputs (as prepared, so a dropped standardised value is the feature's mean), its
    /// hidden layers below the code and its code are multiplied by the masks of `thinning`. A
    /// mask holds 0 for a dropped unit and `1/(1 − p)` for a kept one, so the unthinned network
    /// used for prediction needs no rescaling.
    pub fn dropout_cross_entropy(
        &self,
        x: &Tensor,
        labels: &Tensor,
        thinning: &ThinningMasks,
    ) -> Result<Tensor> {
        let mut inputs = self.cae.prepare_inputs(x)?;
        if let Some(keep) = &thinning.input {
            inputs = (inputs * keep)?;
        }
        let mut code = self.cae.encode_thinned(&inputs, &thinning.hidden)?;
        if let Some(keep) = &thinning.code {
            code = (code * keep)?;
        }
        let log_p = candle_nn::ops::log_softmax(&self.head(&code)?, D::Minus1)?;
        Ok(log_p.gather(&labels.unsqueeze(1)?, 1)?.neg()?.mean_all()?)
    }

    /// The tangent-propagation penalty of the Manifold Tangent Classifier, per sample `[B]`:
    /// `Σ_i ‖∂p(x)/∂x · u_i‖²` for the tangents `u: [K, B, input]` of each sample, with `p` the
    /// class probabilities. `∂p/∂x u = (diag p − p pᵀ) V J u`, exact, from forward ops. `x` is
    /// as read; the tangents, like the encoder's Jacobian, are in its input space (standardised,
    /// for an encoder that stores a standardisation: what [`ContractiveAutoencoder::tangent_basis`]
    /// of the prepared inputs gives).
    pub fn tangent_propagation(&self, x: &Tensor, tangents: &Tensor) -> Result<Tensor> {
        let (code, ju) = self
            .cae
            .code_and_jvp(&self.cae.prepare_inputs(x)?, tangents)?; // [B, code], [K, B, code]
        let logits = self.head(&code)?;
        let p = candle_nn::ops::log_softmax(&logits, D::Minus1)?
            .exp()?
            .unsqueeze(0)?; // [1, B, classes]
        let (k, b, code) = ju.dims3()?;
        let z = ju
            .reshape((k * b, code))?
            .matmul(&self.weight.t()?)?
            .reshape((k, b, ()))?; // V J u
        let pz = z.broadcast_mul(&p)?;
        let dp = (&pz - p.broadcast_mul(&pz.sum_keepdim(D::Minus1)?)?)?;
        Ok(dp.sqr()?.sum(D::Minus1)?.sum(0)?)
    }
}

/// A classifier file read and checked: the CAE's configuration and tensors, the softmax layer.
#[derive(Debug)]
pub struct LoadedClassifier {
    /// The autoencoder's configuration.
    pub config: CaeConfig,
    /// The softmax layer's configuration.
    pub classifier: ClassifierConfig,
    /// Every tensor the classifier needs (the CAE's and the softmax layer's).
    pub tensors: HashMap<String, Tensor>,
    /// The file's string metadata.
    pub metadata: HashMap<String, String>,
}

impl LoadedClassifier {
    /// The classifier, computing in `dtype`.
    pub fn classifier(&self, dtype: DType, device: &Device) -> Result<Classifier> {
        let weights = weights_on(&self.tensors, dtype, device)?;
        Classifier::new(&self.config, self.classifier.classes, weights)
    }
}

/// Whether the bytes of a safetensors file are a classifier file (they carry [`CLASSIFIER_KEY`]).
pub fn is_classifier(bytes: &[u8]) -> bool {
    safetensors::SafeTensors::read_metadata(bytes)
        .ok()
        .and_then(|(_, header)| header.metadata().clone())
        .is_some_and(|m| m.contains_key(CLASSIFIER_KEY))
}

/// Reads a classifier file written by [`save_classifier`], checking every tensor's shape.
pub fn read_classifier(path: &Path, device: &Device) -> Result<LoadedClassifier> {
    let bytes = std::fs::read(path).map_err(|error| CaeError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let cae = model_from_bytes(&bytes, path, device)?;
    let json = cae
        .metadata
        .get(CLASSIFIER_KEY)
        .ok_or(CaeError::MissingConfig {
            path: path.to_path_buf(),
            key: CLASSIFIER_KEY,
        })?;
    let classifier: ClassifierConfig =
        serde_json::from_str(json).map_err(|e| CaeError::BadConfig {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let mut all = tensors_from_bytes(&bytes, path, device)?.tensors;
    let code = cae.config.code_dim()?;
    let mut tensors = cae.tensors;
    for (name, shape) in [
        (HEAD_WEIGHT, vec![classifier.classes, code]),
        (HEAD_BIAS, vec![classifier.classes]),
    ] {
        let t = all.remove(name).ok_or_else(|| CaeError::MissingTensor {
            path: path.to_path_buf(),
            name: name.into(),
        })?;
        if t.dims() != shape.as_slice() {
            return Err(CaeError::WrongShape {
                path: path.to_path_buf(),
                name: name.into(),
                expected: shape,
                found: t.dims().to_vec(),
            });
        }
        tensors.insert(name.into(), t);
    }
    Ok(LoadedClassifier {
        config: cae.config,
        classifier,
        tensors,
        metadata: cae.metadata,
    })
}

/// Saves a classifier file atomically: the CAE of `config` and the softmax layer, all read from
/// `varmap`, plus `extra` metadata.
pub fn save_classifier(
    path: &Path,
    config: &CaeConfig,
    classifier: &ClassifierConfig,
    varmap: &VarMap,
    extra: &BTreeMap<String, String>,
) -> Result<()> {
    let vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut names: Vec<String> = param_specs(config)?.into_iter().map(|s| s.name).collect();
    names.extend([HEAD_WEIGHT.to_string(), HEAD_BIAS.to_string()]);
    let mut tensors = BTreeMap::new();
    for name in names {
        let var = vars.get(&name).ok_or_else(|| {
            CaeError::InvalidConfig(format!("the classifier's variables have no `{name}`"))
        })?;
        tensors.insert(name, var.as_tensor().clone());
    }
    drop(vars);
    let mut metadata = extra.clone();
    metadata.insert(CONFIG_KEY.into(), crate::checkpoint::config_json(config));
    metadata.insert(
        CLASSIFIER_KEY.into(),
        crate::checkpoint::config_json(classifier),
    );
    metadata.insert(FORMAT_KEY.into(), FORMAT_VERSION.into());
    write_tensors(path, &tensors, &metadata)
}
