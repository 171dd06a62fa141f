//! Digit images in, for the subcommands that run a model on a user's images (`reconstruct`,
//! `encode`, `classify`): the inputs found (directories expanded), every one preprocessed and
//! checked before any work, and the batch (or dataset) the model takes.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_data::{Dataset, SampleShape, Storage};
use cae_digit::{Digit, DigitLimits, PIXELS, SIDE};
use candle_core::{Device, Tensor};

/// Suffix of the figures `reconstruct` writes; directory inputs skip files that end with it.
pub const OUTPUT_SUFFIX: &str = ".reconstruction.png";

/// Expands directories in `inputs` into their images (sorted), keeping files as given.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for input in inputs {
        let meta = std::fs::metadata(input)
            .with_context(|| format!("cannot read {}; check the path", input.display()))?;
        if !meta.is_dir() {
            files.push(input.clone());
            continue;
        }
        let mut found = Vec::new();
        let entries = std::fs::read_dir(input)
            .with_context(|| format!("cannot list the directory {}", input.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot list the directory {}", input.display()))?
                .path();
            if path.is_file() && is_image_name(&path) {
                found.push(path);
            }
        }
        if found.is_empty() {
            bail!(
                "{}: the directory holds no .png, .jpg or .jpeg images",
                input.display()
            );
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

fn is_image_name(path: &Path) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    // Lossy, so that a name that is not UTF-8 is judged by its (ASCII) extension like any other.
    let lower = name.to_string_lossy().to_ascii_lowercase();
    if lower.ends_with(OUTPUT_SUFFIX) || lower.starts_with('.') {
        return false;
    }
    [".png", ".jpg", ".jpeg"].iter().any(|e| lower.ends_with(e))
}

/// Preprocesses every file; fails, listing every bad file, unless all of them are usable.
pub fn load_all(files: &[PathBuf]) -> Result<Vec<Digit>> {
    let limits = DigitLimits::default();
    let mut digits = Vec::with_capacity(files.len());
    let mut problems = Vec::new();
    for file in files {
        match cae_digit::load_digit(file, &limits) {
            Ok(d) => digits.push(d),
            Err(e @ cae_digit::DigitError::TooLarge { .. }) => {
                problems.push(format!("{e}; shrink or crop the image and try again"))
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    match problems.len() {
        0 => Ok(digits),
        1 => bail!("{}\nnothing was written", problems[0]),
        n => bail!(
            "{n} of {} inputs cannot be used; nothing was written:\n  {}",
            files.len(),
            problems.join("\n  ")
        ),
    }
}

/// The digits as a `[N, 784]` batch.
pub fn batch(digits: &[Digit], device: &Device) -> Result<Tensor> {
    let values: Vec<f32> = digits
        .iter()
        .flat_map(|d| d.pixels.iter().copied())
        .collect();
    Ok(Tensor::from_vec(values, (digits.len(), PIXELS), device)?)
}

/// The digits as a dataset of 28×28 grey images, to run a model over in batches.
pub fn dataset(digits: &[Digit]) -> Result<Dataset> {
    let values: Vec<f32> = digits
        .iter()
        .flat_map(|d| d.pixels.iter().copied())
        .collect();
    Ok(Dataset::new(
        Storage::F32(values),
        SampleShape::grey(SIDE, SIDE),
        None,
    )?)
}
