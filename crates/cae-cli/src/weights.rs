//! The model the `reconstruct` and `encode` subcommands run: the default weights embedded in the
//! binary, or any model file the user names with `--weights`.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::ContractiveAutoencoder;
use candle_core::{DType, Device};
use clap::Args;

/// The default model (`assets/default-model.safetensors`), built into the binary so that
/// `reconstruct` and `encode` work on a fresh install. Its configuration is read from the file's
/// own metadata, so a retrained file can replace it without touching this code.
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../../assets/default-model.safetensors");

/// How the embedded model is named in messages.
pub const DEFAULT_MODEL_NAME: &str = "<embedded default model>";

/// Options shared by the subcommands that run a trained model.
#[derive(Debug, Clone, Args)]
pub struct ModelArgs {
    /// A model file written by `cae-cli train` (its `model.safetensors`) to use instead of the
    /// default model built into this binary (a CAE trained on MNIST by the project; see
    /// assets/default-model-config.json and assets/default-model-metrics.csv).
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Device to compute on: auto, cpu, cuda, cuda:N, metal.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

impl ModelArgs {
    /// The device and the model, checked to take 28×28 single-channel inputs.
    pub fn load(&self) -> Result<(ContractiveAutoencoder, Device)> {
        let device = cae_core::device(&self.device)
            .with_context(|| format!("cannot use --device {}", self.device))?;
        let model = load_model(self.weights.as_deref(), &device)?;
        if model.input_dim() != cae_digit::PIXELS {
            bail!(
                "{} takes {} inputs per image, but digits are {side}x{side} = {} pixels; use a model trained on MNIST-sized images",
                self.model_name(),
                model.input_dim(),
                cae_digit::PIXELS,
                side = cae_digit::SIDE,
            );
        }
        Ok((model, device))
    }

    /// The model's name for messages: its path, or the embedded default's name.
    pub fn model_name(&self) -> String {
        match &self.weights {
            Some(path) => path.display().to_string(),
            None => DEFAULT_MODEL_NAME.to_string(),
        }
    }
}

/// The model in `path` (config from the file's metadata), or the embedded default model for `None`.
pub fn load_model(path: Option<&Path>, device: &Device) -> Result<ContractiveAutoencoder> {
    match path {
        Some(path) => cae_core::read_model(path, device)
            .and_then(|m| m.model(DType::F32, device))
            .with_context(|| {
                format!(
                    "cannot load the model {}; pass a model.safetensors written by `cae-cli train`, or leave out --weights to use the built-in default model",
                    path.display()
                )
            }),
        None => cae_core::model_from_bytes(DEFAULT_MODEL, Path::new(DEFAULT_MODEL_NAME), device)
            .and_then(|m| m.model(DType::F32, device))
            .context("the built-in default model is damaged; reinstall cae-cli, or pass --weights FILE"),
    }
}
