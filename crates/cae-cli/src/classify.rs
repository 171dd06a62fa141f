//! `cae-cli classify`: the digit a fine-tuned classifier sees in each of the user's images.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use clap::Args;
use serde::Serialize;

use crate::digits::{batch, collect_inputs, load_all};
use crate::values::DeviceChoice;

#[derive(Debug, Args)]
#[command(after_help = "\
Each image is turned into an MNIST-like 28x28 digit as for `reconstruct`, then classified. All \
inputs are checked first; if any cannot be used, every problem is reported and nothing is printed.")]
pub struct ClassifyArgs {
    /// A classifier file written by `cae-cli finetune`.
    #[arg(long, value_name = "FILE")]
    weights: PathBuf,
    /// Image of a digit (PNG or JPEG), or a directory of them; repeat for more.
    #[arg(long, short, required = true, value_name = "PATH")]
    input: Vec<PathBuf>,
    /// Print one JSON object per image instead of text.
    #[arg(long)]
    json: bool,
    /// `auto`, `cpu`, `cuda`, `cuda:N` or `metal`.
    #[arg(long, default_value_t)]
    device: DeviceChoice,
}

#[derive(Debug, Serialize)]
struct Classified {
    input: String,
    digit: usize,
    probabilities: Vec<f32>,
}

pub fn run(args: ClassifyArgs) -> Result<()> {
    let device = args.device.open()?;
    let classifier = cae_core::read_classifier(&args.weights, &device)
        .and_then(|c| c.classifier(DType::F32, &device))
        .with_context(|| {
            format!(
                "cannot load the classifier {}; pass a file written by `cae-cli finetune`",
                args.weights.display()
            )
        })?;
    if classifier.autoencoder().input_dim() != cae_digit::PIXELS {
        bail!(
            "{} takes {} inputs per image, but digits are {} pixels",
            args.weights.display(),
            classifier.autoencoder().input_dim(),
            cae_digit::PIXELS
        );
    }
    let files = collect_inputs(&args.input)?;
    let digits = load_all(&files)?;
    let probabilities: Vec<Vec<f32>> = classifier
        .probabilities(&batch(&digits, &device)?)?
        .to_dtype(DType::F32)?
        .to_vec2()?;
    for (file, p) in files.iter().zip(probabilities) {
        let digit = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        if args.json {
            let line = Classified {
                input: file.display().to_string(),
                digit,
                probabilities: p,
            };
            println!("{}", serde_json::to_string(&line)?);
        } else {
            let listed: Vec<String> = p
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{i}: {v:.4}"))
                .collect();
            println!(
                "{}: {digit} (probability {:.4}); {}",
                file.display(),
                p[digit],
                listed.join(", ")
            );
        }
    }
    Ok(())
}
