//! The model the `reconstruct`, `encode` and `eval` subcommands run, found in one order:
//! `--weights FILE`, else the weights `cargo xtask fetch-weights` installed, else the default
//! weights embedded in the binary.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::ContractiveAutoencoder;
use candle_core::{DType, Device};
use clap::Args;

use crate::values::DeviceChoice;

/// The default model (`assets/default-model.safetensors`), built into the binary so that
/// `reconstruct` and `encode` work on a fresh install. Its configuration is read from the file's
/// own metadata, so a retrained file can replace it without touching this code.
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../../assets/default-model.safetensors");

/// How the embedded model is named in messages.
pub const DEFAULT_MODEL_NAME: &str = "<embedded default model>";

/// `--weights`' long help (`--help`): the search order.
pub const WEIGHTS_HELP: &str = "\
A model file written by `cae-cli train` (its model.safetensors).

The model is found in this order: 1. --weights FILE; 2. the weights `cargo xtask fetch-weights` \
installed, $CAE_WEIGHTS_DIR/model.safetensors (by default ~/.local/share/cae/weights/\
model.safetensors on Linux), if that file exists; 3. the model built into this binary (a CAE \
trained on MNIST by the project; see assets/default-model-config.json). -v prints which one is \
used.";

/// Options shared by the subcommands that run a trained model.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A model file written by `cae-cli train`. Without it: the weights `cargo xtask
    /// fetch-weights` installed, else the model built into this binary.
    #[arg(long, value_name = "FILE", long_help = WEIGHTS_HELP)]
    pub weights: Option<PathBuf>,
    /// Device to compute on: auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value_t)]
    pub device: DeviceChoice,
}

impl ModelArgs {
    /// The device and the model, checked to take 28×28 single-channel inputs.
    pub fn load(&self) -> Result<(ContractiveAutoencoder, Device)> {
        let (model, device) = self.load_any()?;
        let source = self.source();
        if model.input_dim() != cae_digit::PIXELS {
            bail!(
                "{} takes {} inputs per image, but digits are {side}x{side} = {} pixels; use a model trained on MNIST-sized images",
                source.name(),
                model.input_dim(),
                cae_digit::PIXELS,
                side = cae_digit::SIDE,
            );
        }
        Ok((model, device))
    }

    /// The device and the model, whatever its input size (for samples of any width, which the
    /// caller checks against [`ContractiveAutoencoder::input_dim`]).
    pub fn load_any(&self) -> Result<(ContractiveAutoencoder, Device)> {
        let device = self.device.open()?;
        let model = self.source().load(&device)?;
        Ok((model, device))
    }

    /// Where the model comes from.
    pub fn source(&self) -> ModelSource {
        ModelSource::find(self.weights.as_deref())
    }
}

/// Where a command's model comes from: the first of these that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    /// `--weights FILE`.
    Given(PathBuf),
    /// The file `cargo xtask fetch-weights` installed ([`cae_data::installed_weights_path`]).
    Installed(PathBuf),
    /// The model built into the binary.
    Embedded,
}

impl ModelSource {
    /// `weights` if given, else the installed weights if that file exists, else the embedded
    /// model. An installed file that cannot be loaded is an error when loading, not a silent
    /// fall-back to another model.
    pub fn find(weights: Option<&Path>) -> Self {
        if let Some(path) = weights {
            return Self::Given(path.to_path_buf());
        }
        match cae_data::installed_weights_path() {
            Some(path) if path.exists() => Self::Installed(path),
            _ => Self::Embedded,
        }
    }

    /// The model file, unless it is the embedded one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Self::Given(path) | Self::Installed(path) => Some(path),
            Self::Embedded => None,
        }
    }

    /// The model's name for messages: its path, or the embedded default's name.
    pub fn name(&self) -> String {
        self.path()
            .map_or(DEFAULT_MODEL_NAME.to_string(), |p| p.display().to_string())
    }

    /// Which model is used and why, for `-v`.
    pub fn describe(&self) -> String {
        match self {
            Self::Given(path) => format!("{} (--weights)", path.display()),
            Self::Installed(path) => format!(
                "{} (installed by `cargo xtask fetch-weights`; --weights FILE overrides it)",
                path.display()
            ),
            Self::Embedded => format!(
                "{DEFAULT_MODEL_NAME} (no --weights, and no fetched weights at {})",
                cae_data::installed_weights_path().map_or("<no data directory>".to_string(), |p| p
                    .display()
                    .to_string())
            ),
        }
    }

    /// Loads the model (configuration from the file's metadata) in f32 on `device`.
    pub fn load(&self, device: &Device) -> Result<ContractiveAutoencoder> {
        tracing::debug!("model: {}", self.describe());
        let (path, hint) = match self {
            Self::Given(path) => (
                path,
                "pass a model.safetensors written by `cae-cli train`, or leave out --weights to use the default model",
            ),
            Self::Installed(path) => (
                path,
                "it is used when no --weights is given: fetch it again with `cargo xtask fetch-weights`, delete it to use the built-in model, or pass --weights FILE",
            ),
            Self::Embedded => {
                return cae_core::model_from_bytes(
                    DEFAULT_MODEL,
                    Path::new(DEFAULT_MODEL_NAME),
                    device,
                )
                .and_then(|m| m.model(DType::F32, device))
                .context(
                    "the built-in default model is damaged; reinstall cae-cli, or pass --weights FILE",
                );
            }
        };
        cae_core::read_model(path, device)
            .and_then(|m| m.model(DType::F32, device))
            .with_context(|| format!("cannot load the model {}; {hint}", path.display()))
    }
}
