//! `cae-cli encode`: the model's codes of digit images or of the rows of a `.npy` array or CSV
//! table, for use as features elsewhere; with `--scores`, each sample's anomaly scores.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::digits::load_all;
use crate::outputs;
use crate::per_sample::{self, Produce};
use crate::rows_out::{self, SampleIds};
use crate::tabular::{self, Inputs, TableArgs};
use crate::weights::ModelArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A JSON array of {"file": ..., "code": [...]} (or {"row": i, "label": ..., "code": [...]}).
    Json,
    /// A header `file,c0,c1,...` (or `row,label,c0,...`) then one row per sample.
    Csv,
    /// A float32 NumPy array [N, code_dim] (.npy v1.0), rows in input order; needs --output.
    Npy,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Each image is preprocessed as for `reconstruct` and encoded by the model. A .npy array (N x D) or \
CSV table (header optional) is encoded row by row, in batches, each row named by its index from \
0; its labels (--labels for a .npy, --label-column for a CSV) are carried into the output. Its \
width D must be the model's input size.

--scores FILE writes a CSV with one line per sample: its file or row index (and label), its \
reconstruction_loss (the loss the model was trained with, per value) and jacobian_frobenius \
(the Frobenius norm of the encoder's Jacobian at the sample, in the model's input space). For \
anomaly detection, samples unlike the training data have a high reconstruction loss; ‖J(x)‖_F \
can go either way (far from the data, sigmoid code units saturate and it drops).

All inputs are read and checked first; if any cannot be used, every problem is reported, the \
exit code is non-zero and nothing is written. Files are written atomically, all or none. \
Directory inputs take every .png/.jpg/.jpeg inside (sorted, not recursive), except \
*.reconstruction.png outputs.")]
pub struct EncodeArgs {
    /// Image of a digit (PNG or JPEG), or a directory of them (repeat for more); or one .npy or
    /// .csv file of samples, one per row.
    #[arg(long, short, required = true, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    #[command(flatten)]
    pub table: TableArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Output file (default: standard output; required for npy).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also write each sample's reconstruction loss and ‖J(x)‖_F to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    pub scores: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    if args.format == Format::Npy && args.output.is_none() {
        bail!("--format npy writes binary data: add --output FILE (e.g. --output codes.npy)");
    }
    let inputs = Inputs::collect(&args.input, &args.table)?;
    let planned: Vec<PathBuf> = args.output.iter().chain(&args.scores).cloned().collect();
    let mut read = inputs.files();
    read.extend(args.model.weights.clone());
    outputs::check(&planned, &read, None)?;

    let (model, device, data, ids) = match &inputs {
        Inputs::Images(files) => {
            let (model, device) = args.model.load()?;
            let data = crate::digits::dataset(&load_all(files)?)?;
            let names = files.iter().map(|f| f.display().to_string()).collect();
            let ids = SampleIds {
                files: Some(names),
                labels: None,
            };
            (model, device, data, ids)
        }
        Inputs::Table(source) => {
            let (model, device) = args.model.load_any()?;
            let data = tabular::load(source)?;
            tabular::check_width(&data, source, &model, &args.model.source().name())?;
            let ids = SampleIds {
                files: None,
                labels: tabular::labels_text(&data),
            };
            (model, device, data, ids)
        }
    };
    let encoded = per_sample::run(
        &model,
        &data,
        &device,
        Produce::Codes,
        args.scores.is_some(),
    )
    .with_context(|| format!("{} failed to encode the inputs", args.model.source().name()))?;
    let (codes, width) = (&encoded.values, encoded.width);
    let bytes = match args.format {
        Format::Json => rows_out::json(&ids, codes, width, "code")?,
        Format::Csv => rows_out::csv(&ids, codes, width, "c"),
        Format::Npy => rows_out::npy(codes, width),
    };
    let mut files = Vec::new();
    if let Some(path) = &args.scores {
        files.push((path.clone(), rows_out::scores_csv(&ids, &encoded.scores)));
    }
    match &args.output {
        Some(path) => {
            files.push((path.clone(), bytes));
            outputs::write_all(&files, None)?;
        }
        None => {
            outputs::write_all(&files, None)?;
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .context("cannot write the codes to standard output")?;
        }
    }
    Ok(())
}
