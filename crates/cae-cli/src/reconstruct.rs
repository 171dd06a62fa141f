//! `cae-cli reconstruct`: show what the model makes of a user's own digit images.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::ContractiveAutoencoder;
use cae_digit::{PIXELS, SIDE};
use candle_core::Tensor;
use clap::Args;

use crate::digits::{collect_inputs, load_all, OUTPUT_SUFFIX};
use crate::outputs;
use crate::weights::ModelArgs;

/// Enlargement of the written figure, for viewing.
const SCALE: u32 = 8;

#[derive(Debug, Args)]
#[command(after_help = "\
Each image is turned into an MNIST-like 28x28 digit (cropped, scaled to a 20x20 box, its centre \
of mass placed where MNIST's are, inverted when the ink is dark; a 28x28 image that already is \
an MNIST digit is kept as it is), run through the model, and written as a PNG showing the \
model's input beside its reconstruction, enlarged 8 times.

All inputs are read and checked first; if any of them cannot be used (empty, not an image, \
corrupt, no ink, too large), every problem is reported, the exit code is non-zero and NO output \
file is written. Outputs are checked before any work: an output that is one of the inputs, or \
a directory that cannot be written, is refused. The figures are written all or none. Directory inputs take every .png/.jpg/.jpeg inside (sorted, not recursive), \
except earlier *.reconstruction.png outputs.")]
pub struct ReconstructArgs {
    /// Image of a digit (PNG or JPEG), or a directory of them; repeat for more.
    #[arg(long, short, required = true, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// Output PNG (only with a single input image). Default: <input stem>.reconstruction.png next
    /// to the input.
    #[arg(long, short, value_name = "FILE", conflicts_with = "output_dir")]
    pub output: Option<PathBuf>,
    /// Write the figures into this directory (created if missing) instead of next to the inputs.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Print one JSON object per image instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub model: ModelArgs,
}

struct Reconstruction {
    input: PathBuf,
    output: PathBuf,
    bce: f32,
    jacobian_frobenius: f32,
    inverted: bool,
    original_size: (u32, u32),
    figure: image::GrayImage,
}

fn output_paths(args: &ReconstructArgs, files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if let Some(out) = &args.output {
        if files.len() != 1 {
            bail!(
                "--output names one file but there are {} input images; use --output-dir DIR instead",
                files.len()
            );
        }
        return Ok(vec![out.clone()]);
    }
    let mut seen = HashSet::new();
    let mut outputs = Vec::with_capacity(files.len());
    for file in files {
        let stem = file
            .file_stem()
            .with_context(|| format!("{}: has no file name", file.display()))?;
        let mut name = stem.to_os_string();
        name.push(OUTPUT_SUFFIX);
        let dir = match &args.output_dir {
            Some(dir) => dir.clone(),
            None => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let out = dir.join(name);
        if !seen.insert(out.clone()) {
            bail!(
                "two inputs would both be written to {}; rename one of them or process them separately",
                out.display()
            );
        }
        outputs.push(out);
    }
    Ok(outputs)
}

fn run_model(model: &ContractiveAutoencoder, x: &Tensor) -> Result<(Vec<f32>, f32, f32)> {
    let recon = model.reconstruct(x)?.flatten_all()?.to_vec1::<f32>()?;
    let bce = model
        .sample_reconstruction_loss(x)?
        .first()
        .copied()
        .unwrap_or(f64::NAN) as f32;
    let sq = model.jacobian_sq_norm(x)?.flatten_all()?.to_vec1::<f32>()?;
    let jf = sq.first().copied().unwrap_or(f32::NAN).max(0.0).sqrt();
    Ok((recon, bce, jf))
}

pub fn run(args: ReconstructArgs) -> Result<()> {
    let files = collect_inputs(&args.input)?;
    let outputs = output_paths(&args, &files)?;
    let mut read = files.clone();
    read.extend(args.model.weights.clone());
    outputs::check(&outputs, &read, args.output_dir.as_deref())?;
    let (model, device) = args.model.load()?;
    let digits = load_all(&files)?;

    let mut results = Vec::with_capacity(files.len());
    for ((file, output), digit) in files.iter().zip(outputs).zip(&digits) {
        let x = Tensor::from_slice(&digit.pixels, (1, PIXELS), &device)?;
        let (recon, bce, jacobian_frobenius) = run_model(&model, &x)
            .with_context(|| format!("{}: the model failed on this image", file.display()))?;
        let row: Vec<f32> = digit.pixels.iter().chain(&recon).copied().collect();
        let figure = cae_train::figures::image_grid(&[&row], SIDE, SIDE, SCALE);
        results.push(Reconstruction {
            input: file.clone(),
            output,
            bce,
            jacobian_frobenius,
            inverted: digit.inverted,
            original_size: digit.original_size,
            figure,
        });
    }

    let encoded = results
        .iter()
        .map(|r| {
            Ok((
                r.output.clone(),
                cae_train::figures::encode_png(&r.figure, &r.output)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    outputs::write_all(&encoded, args.output_dir.as_deref())?;
    for r in &results {
        if args.json {
            let line = serde_json::json!({
                "input": r.input.display().to_string(),
                "output": r.output.display().to_string(),
                "bce": r.bce,
                "jacobian_frobenius": r.jacobian_frobenius,
                "inverted": r.inverted,
                "original_size": [r.original_size.0, r.original_size.1],
            });
            println!("{line}");
        } else {
            println!(
                "wrote {}: BCE {:.4} per pixel, code ‖J‖_F {:.3} (input {}x{}{})",
                r.output.display(),
                r.bce,
                r.jacobian_frobenius,
                r.original_size.0,
                r.original_size.1,
                if r.inverted { ", inverted" } else { "" }
            );
        }
    }
    Ok(())
}
