//! One file is one complete model: weights in safetensors, the [`CaeConfig`] as JSON in its metadata.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use safetensors::tensor::{Dtype, TensorView};

use crate::{param_specs, CaeConfig, CaeError, ContractiveAutoencoder, Result};

/// Metadata key holding the model configuration as JSON.
pub const CONFIG_KEY: &str = "cae.config";
/// Metadata key holding the file format version.
pub const FORMAT_KEY: &str = "cae.format";
pub(crate) const FORMAT_VERSION: &str = "1";
/// The format versions this build reads (a file without the key predates it and is version 1).
const READABLE_FORMATS: [&str; 1] = [FORMAT_VERSION];

/// Tensors and metadata read from a safetensors file.
#[derive(Debug)]
pub struct TensorFile {
    /// The tensors by name.
    pub tensors: HashMap<String, Tensor>,
    /// The file's string metadata.
    pub metadata: HashMap<String, String>,
}

/// A model file read and checked against its own configuration.
#[derive(Debug)]
pub struct LoadedModel {
    /// The configuration from the file's metadata.
    pub config: CaeConfig,
    /// Every parameter the configuration needs, with the shape it needs.
    pub tensors: HashMap<String, Tensor>,
    /// All metadata of the file (the configuration and anything the writer added).
    pub metadata: HashMap<String, String>,
}

/// Serialises named tensors (F32 or F64) and string metadata to safetensors bytes.
pub fn tensors_to_bytes(
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let mut raw: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let t = t.to_device(&Device::Cpu)?;
        let (dtype, bytes) = match t.dtype() {
            DType::F64 => (
                Dtype::F64,
                t.flatten_all()?
                    .to_vec1::<f64>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
            _ => (
                Dtype::F32,
                t.to_dtype(DType::F32)?
                    .flatten_all()?
                    .to_vec1::<f32>()?
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        };
        raw.push((name.clone(), dtype, t.dims().to_vec(), bytes));
    }
    let views = raw
        .iter()
        .map(|(name, dtype, shape, bytes)| {
            TensorView::new(*dtype, shape.clone(), bytes)
                .map(|v| (name.clone(), v))
                .map_err(|e| CaeError::InvalidConfig(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let metadata: HashMap<String, String> = metadata.clone().into_iter().collect();
    let bytes = safetensors::serialize(views, Some(metadata))
        .map_err(|e| CaeError::InvalidConfig(format!("cannot serialise tensors: {e}")))?;
    canonical_header(bytes)
}

/// `bytes` with the safetensors header's metadata keys in sorted order. safetensors writes the
/// metadata from a `HashMap`, whose order differs between maps, so without this the same model
/// would not always give the same file (and the same SHA-256).
fn canonical_header(mut bytes: Vec<u8>) -> Result<Vec<u8>> {
    let malformed = |what: &str| CaeError::InvalidConfig(format!("serialised header: {what}"));
    let len_bytes: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| malformed("too short"))?;
    let len = usize::try_from(u64::from_le_bytes(len_bytes)).map_err(|_| malformed("length"))?;
    let header = bytes.get(8..8 + len).ok_or_else(|| malformed("length"))?;
    let mut top: BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| malformed(&e.to_string()))?;
    if let Some(meta) = top.get_mut("__metadata__") {
        let sorted: BTreeMap<String, String> =
            serde_json::from_value(meta.take()).map_err(|e| malformed(&e.to_string()))?;
        *meta = serde_json::to_value(sorted).map_err(|e| malformed(&e.to_string()))?;
    }
    let mut canonical = serde_json::to_vec(&top).map_err(|e| malformed(&e.to_string()))?;
    if canonical.len() > len {
        return Err(malformed("grew when its keys were sorted"));
    }
    // The same keys and values in another order have the same length; keep safetensors' padding.
    canonical.resize(len, b' ');
    bytes[8..8 + len].copy_from_slice(&canonical);
    Ok(bytes)
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::atomic::write_atomic(path, bytes).map_err(|error| CaeError::Write {
        path: path.to_path_buf(),
        error,
    })
}

/// Writes tensors and metadata to a safetensors file, atomically.
pub fn write_tensors(
    path: &Path,
    tensors: &BTreeMap<String, Tensor>,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    write_atomic(path, &tensors_to_bytes(tensors, metadata)?)
}

/// Reads every tensor of a safetensors file onto `device` (F32 and F64 only), with its metadata.
pub fn read_tensors(path: &Path, device: &Device) -> Result<TensorFile> {
    let bytes = std::fs::read(path).map_err(|error| CaeError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    tensors_from_bytes(&bytes, path, device)
}

/// As [`read_tensors`], from bytes; `source` names them in errors.
pub fn tensors_from_bytes(bytes: &[u8], source: &Path, device: &Device) -> Result<TensorFile> {
    let path = || source.to_path_buf();
    let (_, header) =
        safetensors::SafeTensors::read_metadata(bytes).map_err(|e| CaeError::NotSafetensors {
            path: path(),
            reason: e.to_string(),
        })?;
    let st =
        safetensors::SafeTensors::deserialize(bytes).map_err(|e| CaeError::NotSafetensors {
            path: path(),
            reason: e.to_string(),
        })?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let shape = view.shape().to_vec();
        let data = view.data();
        let t = match view.dtype() {
            Dtype::F32 => {
                let v: Vec<f32> = data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect();
                Tensor::from_vec(v, shape, device)?
            }
            Dtype::F64 => {
                let v: Vec<f64> = data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(std::array::from_fn(|i| c[i])))
                    .collect();
                Tensor::from_vec(v, shape, device)?
            }
            other => {
                return Err(CaeError::WrongDtype {
                    path: path(),
                    name,
                    found: format!("{other:?}"),
                })
            }
        };
        tensors.insert(name, t);
    }
    let metadata = header.metadata().clone().unwrap_or_default();
    Ok(TensorFile { tensors, metadata })
}

/// Reads a model file: configuration from the metadata, every tensor it needs, checked for presence and shape.
pub fn read_model(path: &Path, device: &Device) -> Result<LoadedModel> {
    let bytes = std::fs::read(path).map_err(|error| CaeError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    model_from_bytes(&bytes, path, device)
}

/// As [`read_model`], from bytes (e.g. weights embedded in a binary); `source` names them in errors.
pub fn model_from_bytes(bytes: &[u8], source: &Path, device: &Device) -> Result<LoadedModel> {
    let TensorFile {
        mut tensors,
        metadata,
    } = tensors_from_bytes(bytes, source, device)?;
    let path: PathBuf = source.to_path_buf();
    if let Some(found) = metadata.get(FORMAT_KEY) {
        if !READABLE_FORMATS.contains(&found.as_str()) {
            return Err(CaeError::UnsupportedFormat {
                path,
                found: found.clone(),
                supported: FORMAT_VERSION,
            });
        }
    }
    let json = metadata.get(CONFIG_KEY).ok_or(CaeError::MissingConfig {
        path: path.clone(),
        key: CONFIG_KEY,
    })?;
    let config: CaeConfig = serde_json::from_str(json).map_err(|e| CaeError::BadConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    config.validate().map_err(|e| CaeError::BadConfig {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    let mut needed = HashMap::new();
    for spec in param_specs(&config)? {
        let t = tensors
            .remove(&spec.name)
            .ok_or_else(|| CaeError::MissingTensor {
                path: path.clone(),
                name: spec.name.clone(),
            })?;
        if t.dims() != spec.shape.as_slice() {
            return Err(CaeError::WrongShape {
                path: path.clone(),
                name: spec.name,
                expected: spec.shape,
                found: t.dims().to_vec(),
            });
        }
        if let Some(index) = first_non_finite(&t)? {
            return Err(CaeError::NonFiniteTensor {
                path: path.clone(),
                name: spec.name,
                index,
            });
        }
        needed.insert(spec.name, t);
    }
    Ok(LoadedModel {
        config,
        tensors: needed,
        metadata,
    })
}

/// The flat index of the first NaN or infinite element of `t`, if any.
fn first_non_finite(t: &Tensor) -> Result<Option<usize>> {
    let values = t.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok(values.iter().position(|v| !v.is_finite()))
}

impl LoadedModel {
    /// The model, computing in `dtype`.
    pub fn model(&self, dtype: DType, device: &Device) -> Result<ContractiveAutoencoder> {
        ContractiveAutoencoder::new(&self.config, weights_on(&self.tensors, dtype, device)?)
    }

    /// Trainable variables holding these weights, and the model reading them (to resume training).
    pub fn into_trainable(
        self,
        dtype: DType,
        device: &Device,
    ) -> Result<(ContractiveAutoencoder, VarMap)> {
        let varmap = VarMap::new();
        {
            let mut vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
            for (name, t) in self.tensors {
                vars.insert(
                    name,
                    Var::from_tensor(&t.to_dtype(dtype)?.to_device(device)?)?,
                );
            }
        }
        let model = ContractiveAutoencoder::new(
            &self.config,
            VarBuilder::from_varmap(&varmap, dtype, device),
        )?;
        Ok((model, varmap))
    }
}

/// The bytes of a model file for `config` with the weights in `varmap`, plus `extra` metadata.
pub fn model_to_bytes(
    config: &CaeConfig,
    varmap: &VarMap,
    extra: &BTreeMap<String, String>,
) -> Result<Vec<u8>> {
    let vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
    let mut tensors = BTreeMap::new();
    for spec in param_specs(config)? {
        let var = vars.get(&spec.name).ok_or_else(|| {
            CaeError::InvalidConfig(format!(
                "the variables have no `{}`; they do not belong to this configuration",
                spec.name
            ))
        })?;
        tensors.insert(spec.name, var.as_tensor().clone());
    }
    let mut metadata = extra.clone();
    metadata.insert(CONFIG_KEY.into(), config_json(config));
    metadata.insert(FORMAT_KEY.into(), FORMAT_VERSION.into());
    tensors_to_bytes(&tensors, &metadata)
}

/// Saves a model file atomically; see [`model_to_bytes`].
pub fn save_model(
    path: &Path,
    config: &CaeConfig,
    varmap: &VarMap,
    extra: &BTreeMap<String, String>,
) -> Result<()> {
    write_atomic(path, &model_to_bytes(config, varmap, extra)?)
}

impl ContractiveAutoencoder {
    /// Loads a model file saved by [`save_model`] (configuration included), computing in `dtype`.
    pub fn load(path: &Path, dtype: DType, device: &Device) -> Result<Self> {
        read_model(path, device)?.model(dtype, device)
    }
}

/// A `VarBuilder` reading copies of `tensors` in `dtype` on `device`.
pub(crate) fn weights_on<'a>(
    tensors: &HashMap<String, Tensor>,
    dtype: DType,
    device: &Device,
) -> Result<VarBuilder<'a>> {
    let tensors = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?.to_device(device)?)))
        .collect::<Result<HashMap<_, _>>>()?;
    Ok(VarBuilder::from_tensors(tensors, dtype, device))
}

/// A configuration as JSON, for a model file's metadata.
pub(crate) fn config_json(config: &impl serde::Serialize) -> String {
    // invariant: configurations are structs and enums with string keys, which always serialise.
    serde_json::to_string(config).expect("a configuration always serialises")
}
