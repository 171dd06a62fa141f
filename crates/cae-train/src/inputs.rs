//! Data in a model's input space: a dataset's values through the standardisation the model
//! stores (the whole-dataset form of `ContractiveAutoencoder::prepare_inputs`), and the
//! standardisation a run fits on its training split for the squared-error loss.
use std::borrow::Cow;

use cae_core::{CaeConfig, Standardisation};
use cae_data::{Dataset, Storage};

use crate::TrainError;

/// `data` as the model of `config` takes it: the same dataset when the model stores no
/// standardisation, otherwise a float copy with every value `(x − mean) / scale`.
///
/// The values are computed in `f32` exactly as the model's `prepare_inputs` computes them on a
/// batch (one subtraction and one division of `f32`s), so both give the same bits.
pub fn in_model_space<'a>(
    config: &CaeConfig,
    data: &'a Dataset,
) -> Result<Cow<'a, Dataset>, TrainError> {
    let Some(standardisation) = &config.standardisation else {
        return Ok(Cow::Borrowed(data));
    };
    let dim = data.image_dim();
    if standardisation.dim() != dim {
        return Err(TrainError::InvalidConfig(format!(
            "the model standardises {} input values; the data has {dim} per sample",
            standardisation.dim()
        )));
    }
    let mean: Vec<f32> = standardisation.mean.iter().map(|&m| m as f32).collect();
    let scale: Vec<f32> = standardisation.scale.iter().map(|&s| s as f32).collect();
    let mut values = Vec::with_capacity(data.len() * dim);
    for i in 0..data.len() {
        let sample = data.sample_f32(i);
        values.extend(
            sample
                .iter()
                .zip(mean.iter().zip(&scale))
                .map(|(x, (m, s))| (x - m) / s),
        );
    }
    let labels = data.is_labelled().then(|| data.labels().to_vec());
    let mut standardised = Dataset::new(Storage::F32(values), data.shape(), labels)?;
    if let Some(names) = data.class_names() {
        standardised = standardised.with_class_names(names.to_vec())?;
    }
    Ok(Cow::Owned(standardised))
}

/// Each feature's mean and standard deviation over `train` (summed in `f64`), as the
/// standardisation a squared-error model stores; a feature constant over `train` is only
/// centred.
pub fn fit_standardisation(train: &Dataset) -> Result<Standardisation, TrainError> {
    let stats = train.feature_stats().ok_or_else(|| {
        TrainError::InvalidConfig("no training samples to fit the standardisation on".into())
    })?;
    Ok(Standardisation::from_moments(stats.mean, stats.std)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cae_core::{ContractiveAutoencoder, ReconstructionLoss};
    use cae_data::SampleShape;
    use candle_core::{DType, Device};

    fn table() -> Dataset {
        let values = vec![
            1.0, 10.0, 5.0, 3.0, 12.0, 5.0, 2.0, 17.5, 5.0, -4.0, 0.25, 5.0,
        ];
        Dataset::new(Storage::F32(values), SampleShape::Features(3), None).unwrap()
    }

    #[test]
    fn standardised_dataset_matches_the_models_own_inputs_bit_for_bit() {
        let data = table();
        let s = fit_standardisation(&data).unwrap();
        assert_eq!(s.scale[2], 1.0, "a constant feature is only centred");
        let mut config = CaeConfig::preset("small").unwrap();
        config.height = 1;
        config.width = 3;
        config.loss = ReconstructionLoss::Mse;
        config.standardisation = Some(s);
        let (model, _) =
            ContractiveAutoencoder::init(&config, 1, DType::F32, &Device::Cpu).unwrap();
        let standardised = in_model_space(&config, &data).unwrap();
        let raw = data.to_tensor(0..data.len(), &Device::Cpu).unwrap();
        let prepared = model.prepare_inputs(&raw).unwrap();
        let ours = standardised.to_tensor(0..data.len(), &Device::Cpu).unwrap();
        assert_eq!(
            ours.to_vec2::<f32>().unwrap(),
            prepared.to_vec2::<f32>().unwrap()
        );
        // Mean 0 and spread 1 on the data it was fitted on (f64 stats of the f32 result).
        let stats = standardised.feature_stats().unwrap();
        for f in 0..2 {
            assert!(stats.mean[f].abs() < 1e-6, "{stats:?}");
            assert!((stats.std[f] - 1.0).abs() < 1e-6, "{stats:?}");
        }
        let back = model.restore_outputs(&prepared).unwrap();
        let back = back.to_vec2::<f32>().unwrap();
        for (row, orig) in back.iter().zip(raw.to_vec2::<f32>().unwrap()) {
            for (b, o) in row.iter().zip(orig) {
                assert!((b - o).abs() <= 1e-6 * o.abs().max(1.0), "{b} vs {o}");
            }
        }
    }

    #[test]
    fn a_model_without_standardisation_takes_the_data_as_it_is() {
        let data = table();
        let config = CaeConfig::preset("small").unwrap();
        assert!(matches!(
            in_model_space(&config, &data).unwrap(),
            Cow::Borrowed(_)
        ));
    }
}
