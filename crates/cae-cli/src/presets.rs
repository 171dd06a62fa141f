//! `cae-cli presets`: the model presets; with `--dataset`, whether each fits that data and, if
//! not, why (a convolutional preset takes grey images whose size its layers can decode).
use anyhow::Result;
use cae_core::CaeConfig;
use cae_data::{Dataset, DatasetSource, LoadOptions, SampleShape, Split};
use clap::Args;

use crate::own_data::{fit_model, ReadArgs};

#[derive(Debug, Args)]
pub struct PresetsArgs {
    /// Say which presets fit this dataset (`mnist`, `fashion-mnist`, a directory of IDX files, a
    /// folder of PNG/JPEG images, a .npy array or a .csv table), read as `train` reads it.
    #[arg(long, value_name = "PATH")]
    dataset: Option<DatasetSource>,
    #[command(flatten)]
    read: ReadArgs,
}

pub fn run(args: PresetsArgs) -> Result<()> {
    let shape = match &args.dataset {
        Some(source) => Some(sample_shape(source, &args.read)?),
        None => {
            if args.read.any_given() {
                anyhow::bail!("the reading flags (--labels, --label-column, --channels, --size) need --dataset PATH");
            }
            None
        }
    };
    if let (Some(source), Some(shape)) = (&args.dataset, shape) {
        println!("{source}: samples of {shape} ({} values)", shape.dim());
    }
    for (name, about) in cae_core::PRESETS {
        let mark = if name == cae_core::DEFAULT_PRESET {
            " (default)"
        } else {
            ""
        };
        let Some(shape) = shape else {
            println!("{name:<18} {about}{mark}");
            continue;
        };
        let fit = CaeConfig::preset(name)
            .map_err(anyhow::Error::from)
            .and_then(|preset| fit_model(preset, shape));
        match fit {
            Ok(model) => println!("{name:<18} fits: {} inputs{mark}", model.input_dim()),
            Err(e) => {
                let why = format!("{e}");
                let why = why.lines().next().unwrap_or_default();
                println!("{name:<18} does not fit: {why}{mark}");
            }
        }
    }
    Ok(())
}

/// What one sample of `source` is: 28×28 grey for the named datasets, else read from the data.
fn sample_shape(source: &DatasetSource, read: &ReadArgs) -> Result<SampleShape> {
    if source.spec().is_some() {
        read.check(source)?;
        return Ok(SampleShape::grey(28, 28));
    }
    let source = read.apply(source.clone())?;
    let options = LoadOptions {
        download: false,
        progress: false,
        ..LoadOptions::default()
    };
    Ok(Dataset::load(&source, Split::Train, &options)?.shape())
}
