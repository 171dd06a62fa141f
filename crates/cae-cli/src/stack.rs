//! `cae-cli train --stack-on RUN_OR_MODEL`: greedy layer-wise stacking.
use std::io::IsTerminal;
use std::path::Path;

use anyhow::{bail, Context, Result};
use cae_train::{base_model_path, train_stacked_layer, StackRunConfig};
use candle_core::Device;

use crate::progress::{stop_on_ctrl_c, Progress};
use crate::train::{default_run_dir, hint, TrainArgs};

pub fn run(args: &TrainArgs, base: &Path, device: &Device, quiet: bool) -> Result<()> {
    let train_cfg = args.train_config()?;
    let path = base_model_path(base);
    let below = cae_core::read_model(&path, device).with_context(|| {
        format!(
            "cannot stack on {}; pass a run directory or a model.safetensors written by `cae-cli train`",
            path.display()
        )
    })?;
    let dataset = args.dataset();
    let data_options = args
        .own
        .options(&crate::train::parse_dataset(&dataset), train_cfg.seed)?;
    let mut run = StackRunConfig::new(
        &path.display().to_string(),
        &below.config,
        args.code_dim.unwrap_or(StackRunConfig::DEFAULT_CODE_DIM),
        train_cfg,
        &dataset,
    )
    .with_context(|| format!("cannot stack a layer on {}", path.display()))?;
    run.data = data_options;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_run_dir("stacked"));
    // Before the data is loaded: a wrong --out fails at once.
    cae_train::check_fresh_run_dir(&out).map_err(hint)?;
    let (train, test) = crate::train::load(args, &dataset, &run.data, below.config.loss, quiet)?;
    if train.image_dim() != below.config.input_dim() {
        bail!(
            "{} takes {} inputs, but the samples of {dataset} are {} = {} values; stack on a model trained on this data",
            path.display(),
            below.config.input_dim(),
            train.shape(),
            train.image_dim()
        );
    }
    let limit = |d: cae_data::Dataset, n: Option<usize>| match n {
        Some(n) => d.take(n),
        None => d,
    };
    let train = limit(train, run.train.train_limit);
    let test = limit(test, run.train.test_limit);
    tracing::info!(run_dir = %out.display(), base = %path.display(), "training a stacked layer");
    let stop = stop_on_ctrl_c()?;
    let mut observer = Progress::new(
        !quiet && std::io::stderr().is_terminal(),
        cae_core::ReconstructionLoss::Bce,
    );
    let stacked = train_stacked_layer(
        &below,
        &run,
        &train,
        &test,
        &out,
        device,
        &mut observer,
        &stop,
    )?;
    println!(
        "done: stacked model {} (encoder {} → {}) in {}",
        out.join(cae_train::files::LAST_MODEL).display(),
        stacked.config.input_dim(),
        stacked.config.code_dim()?,
        out.display()
    );
    Ok(())
}
