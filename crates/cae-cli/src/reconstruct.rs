//! `cae-cli reconstruct`: show what the model makes of a user's own digit images, or write the
//! reconstructions of the rows of a `.npy` array or CSV table, in the data's units.
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::ContractiveAutoencoder;
use cae_digit::{PIXELS, SIDE};
use candle_core::Tensor;
use clap::Args;

use crate::digits::{load_all, OUTPUT_SUFFIX};
use crate::outputs;
use crate::per_sample::{self, Produce};
use crate::rows_out::{self, SampleIds};
use crate::tabular::{self, Inputs, TableArgs};
use crate::weights::ModelArgs;

/// Enlargement of the written figure, for viewing.
const SCALE: u32 = 8;

#[derive(Debug, Args)]
#[command(after_help = "\
Each image is turned into an MNIST-like 28x28 digit (cropped, scaled to a 20x20 box, its centre \
of mass placed where MNIST's are, inverted when the ink is dark; a 28x28 image that already is \
an MNIST digit is kept as it is), run through the model, and written as a PNG showing the \
model's input beside its reconstruction, enlarged 8 times.

A .npy array (N x D) or CSV table is reconstructed row by row, in batches, into --output \
FILE.npy (float32, N x D) or FILE.csv (a header `row,label,x0,...`, the label column only when \
the input has labels), in the data's units; the mean reconstruction loss and ‖J‖_F are printed.

All inputs are read and checked first; if any of them cannot be used (empty, not an image, \
corrupt, no ink, too large), every problem is reported, the exit code is non-zero and NO output \
file is written. Outputs are checked before any work: an output that is one of the inputs, or \
a directory that cannot be written, is refused. The figures are written all or none. Directory inputs take every .png/.jpg/.jpeg inside (sorted, not recursive), \
except earlier *.reconstruction.png outputs.")]
pub struct ReconstructArgs {
    /// Image of a digit (PNG or JPEG), or a directory of them (repeat for more); or one .npy or
    /// .csv file of samples, one per row.
    #[arg(long, short, required = true, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Output PNG (only with a single input image; default: <input stem>.reconstruction.png next
    /// to the input); for a .npy or .csv input, the .npy or .csv file of reconstructions.
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
    /// The reconstruction loss per pixel (the model's, BCE or MSE).
    loss: f32,
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

fn run_model(model: &ContractiveAutoencoder, pixels: &Tensor) -> Result<(Vec<f32>, f32, f32)> {
    let x = &model.prepare_inputs(pixels)?;
    let recon = model.restore_outputs(&model.reconstruct(x)?)?;
    let recon = recon.flatten_all()?.to_vec1::<f32>()?;
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
    match Inputs::collect(&args.input, &args.table)? {
        Inputs::Images(files) => run_images(&args, files),
        table @ Inputs::Table(_) => run_table(&args, &table),
    }
}

/// The reconstructions of a table's rows, written as a table.
fn run_table(args: &ReconstructArgs, inputs: &Inputs) -> Result<()> {
    let Inputs::Table(source) = inputs else {
        bail!("not a table input");
    };
    if args.output_dir.is_some() {
        bail!("--output-dir is for image inputs; name the file of reconstructions of {source} with --output FILE.npy or FILE.csv");
    }
    let Some(output) = &args.output else {
        bail!("{source}: name the file of reconstructions with --output FILE.npy or FILE.csv");
    };
    let npy = match output.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("npy") => true,
        Some(e) if e.eq_ignore_ascii_case("csv") => false,
        _ => bail!(
            "{}: the reconstructions of a table are written as .npy or .csv; name the output FILE.npy or FILE.csv",
            output.display()
        ),
    };
    let mut read = inputs.files();
    read.extend(args.model.weights.clone());
    outputs::check(std::slice::from_ref(output), &read, None)?;
    let (model, device) = args.model.load_any()?;
    let data = tabular::load(source)?;
    tabular::check_width(&data, source, &model, &args.model.source().name())?;
    let done = per_sample::run(&model, &data, &device, Produce::Reconstructions, true)
        .with_context(|| format!("the model failed on {source}"))?;
    let bytes = if npy {
        rows_out::npy(&done.values, done.width)
    } else {
        let ids = SampleIds {
            files: None,
            labels: tabular::labels_text(&data),
        };
        rows_out::csv(&ids, &done.values, done.width, "x")
    };
    outputs::write_all(&[(output.clone(), bytes)], None)?;
    let n = done.scores.len().max(1) as f64;
    let loss = done
        .scores
        .iter()
        .map(|s| s.reconstruction_loss)
        .sum::<f64>()
        / n;
    let jf = done
        .scores
        .iter()
        .map(|s| s.jacobian_frobenius)
        .sum::<f64>()
        / n;
    if args.json {
        let line = serde_json::json!({
            "input": source.to_string(),
            "output": output.display().to_string(),
            "rows": data.len(),
            "mean_reconstruction_loss": loss,
            "mean_jacobian_frobenius": jf,
        });
        println!("{line}");
    } else {
        println!(
            "wrote {}: {} rows of {} values; mean reconstruction loss {loss:.4} per value, mean code ‖J‖_F {jf:.3}",
            output.display(),
            data.len(),
            done.width
        );
    }
    Ok(())
}

/// One figure per digit image.
fn run_images(args: &ReconstructArgs, files: Vec<PathBuf>) -> Result<()> {
    let outputs = output_paths(args, &files)?;
    let mut read = files.clone();
    read.extend(args.model.weights.clone());
    outputs::check(&outputs, &read, args.output_dir.as_deref())?;
    let (model, device) = args.model.load()?;
    let digits = load_all(&files)?;

    let mut results = Vec::with_capacity(files.len());
    for ((file, output), digit) in files.iter().zip(outputs).zip(&digits) {
        let x = Tensor::from_slice(&digit.pixels, (1, PIXELS), &device)?;
        let (recon, loss, jacobian_frobenius) = run_model(&model, &x)
            .with_context(|| format!("{}: the model failed on this image", file.display()))?;
        let row: Vec<f32> = digit.pixels.iter().chain(&recon).copied().collect();
        let figure = cae_train::figures::image_grid(&[&row], SIDE, SIDE, SCALE);
        results.push(Reconstruction {
            input: file.clone(),
            output,
            loss,
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
    let loss_name = model.config().loss;
    for r in &results {
        if args.json {
            // The loss is keyed by its name: `bce` (as always) or `mse`.
            let mut line = serde_json::json!({
                "input": r.input.display().to_string(),
                "output": r.output.display().to_string(),
                "jacobian_frobenius": r.jacobian_frobenius,
                "inverted": r.inverted,
                "original_size": [r.original_size.0, r.original_size.1],
            });
            line[loss_name.key()] = r.loss.into();
            println!("{line}");
        } else {
            println!(
                "wrote {}: {} {:.4} per pixel, code ‖J‖_F {:.3} (input {}x{}{})",
                r.output.display(),
                loss_name.key().to_uppercase(),
                r.loss,
                r.jacobian_frobenius,
                r.original_size.0,
                r.original_size.1,
                if r.inverted { ", inverted" } else { "" }
            );
        }
    }
    Ok(())
}
