//! Seeded initial weights for a configuration.
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::layer::Part;
use crate::{param_specs, CaeConfig, ContractiveAutoencoder, Result, WeightInit};

/// Fresh trainable weights for `config`, drawn from a generator seeded with `seed` (the same seed gives
/// the same weights on every machine), by `config.init` (see [`WeightInit`]).
pub fn init_varmap(config: &CaeConfig, seed: u64, dtype: DType, device: &Device) -> Result<VarMap> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let varmap = VarMap::new();
    {
        let mut vars = varmap.data().lock().unwrap_or_else(|e| e.into_inner());
        for spec in param_specs(config)? {
            let n: usize = spec.shape.iter().product();
            let bound = match config.init {
                WeightInit::Pytorch => 1.0 / (spec.fan_in as f64).sqrt(),
                // Biases (1-D) start at zero.
                WeightInit::GlorotUniform { .. } if spec.shape.len() == 1 => 0.0,
                WeightInit::GlorotUniform {
                    encoder_gain,
                    decoder_gain,
                } => {
                    let gain = if spec.layer.part == Part::Decoder {
                        decoder_gain
                    } else {
                        encoder_gain
                    };
                    let fan_out = n / spec.fan_in.max(1);
                    gain * (6.0 / (spec.fan_in + fan_out) as f64).sqrt()
                }
            };
            let values: Vec<f64> = if bound > 0.0 {
                (0..n).map(|_| rng.random_range(-bound..bound)).collect()
            } else {
                vec![0.0; n]
            };
            let t = Tensor::from_vec(values, spec.shape.as_slice(), &Device::Cpu)?
                .to_dtype(dtype)?
                .to_device(device)?;
            vars.insert(spec.name, Var::from_tensor(&t)?);
        }
    }
    Ok(varmap)
}

impl ContractiveAutoencoder {
    /// A freshly initialised model and the variables that hold its weights (hand them to an optimizer).
    pub fn init(
        config: &CaeConfig,
        seed: u64,
        dtype: DType,
        device: &Device,
    ) -> Result<(Self, VarMap)> {
        let varmap = init_varmap(config, seed, dtype, device)?;
        let model = Self::new(config, VarBuilder::from_varmap(&varmap, dtype, device))?;
        Ok((model, varmap))
    }
}
