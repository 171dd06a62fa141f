//! Samples given as a table, for `encode` and `reconstruct`: which inputs are images and which a
//! `.npy` array or CSV table, the table's label flags (`--labels`, `--label-column`), the table
//! read through cae-data (kept compact, checked for NaN/Inf and against the memory available),
//! its width checked against the model's, and each row's label as text.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use cae_core::ContractiveAutoencoder;
use cae_data::{Dataset, DatasetSource, LoadOptions, Split};
use clap::Args;

use crate::digits::collect_inputs;

/// The flags that say where a table's labels are (for `train` and `eval` too, in
/// [`crate::own_data::OwnDataArgs`]).
#[derive(Debug, Clone, Args)]
pub struct TableArgs {
    /// Labels of a .npy dataset or input: a .npy file with one integer per sample.
    #[arg(long, value_name = "FILE.npy")]
    pub labels: Option<PathBuf>,
    /// The column of a CSV dataset or input that holds the labels, by its header name (kept out
    /// of the features).
    #[arg(long, value_name = "NAME")]
    pub label_column: Option<String>,
}

/// A command's inputs: image files (directories expanded), or one table.
#[derive(Debug)]
pub enum Inputs {
    /// PNG/JPEG files, prepared as digits.
    Images(Vec<PathBuf>),
    /// A `.npy` array or CSV table, one sample per row, with its label flags applied.
    Table(DatasetSource),
}

impl Inputs {
    /// Sorts `inputs` into images or one table; a table must be the only input, and the label
    /// flags must fit it.
    pub fn collect(inputs: &[PathBuf], table: &TableArgs) -> Result<Inputs> {
        let tables: Vec<&PathBuf> = inputs.iter().filter(|p| is_table_name(p)).collect();
        match tables.as_slice() {
            [] => {
                if table.labels.is_some() || table.label_column.is_some() {
                    bail!("--labels and --label-column apply to a .npy or .csv input only");
                }
                Ok(Inputs::Images(collect_inputs(inputs)?))
            }
            [path] if inputs.len() == 1 => Ok(Inputs::Table(table_source(path, table)?)),
            _ => bail!(
                "a .npy or .csv input must be the only --input (got {} inputs); run the command once per table",
                inputs.len()
            ),
        }
    }

    /// Every file the command reads (never to be overwritten by an output).
    pub fn files(&self) -> Vec<PathBuf> {
        match self {
            Inputs::Images(files) => files.clone(),
            Inputs::Table(source) => {
                let mut files: Vec<PathBuf> = source.path().into_iter().map(Into::into).collect();
                if let DatasetSource::Npy(npy) = source {
                    files.extend(npy.labels.clone());
                }
                files
            }
        }
    }
}

/// A file named `*.npy` or `*.csv` (any case).
fn is_table_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("npy") || e.eq_ignore_ascii_case("csv"))
}

/// The table at `path`, read as the label flags say.
fn table_source(path: &Path, args: &TableArgs) -> Result<DatasetSource> {
    std::fs::metadata(path)
        .with_context(|| format!("cannot read {}; check the path", path.display()))?;
    Ok(match DatasetSource::detect(path)? {
        DatasetSource::Npy(mut files) => {
            if args.label_column.is_some() {
                bail!(
                    "--label-column applies to a CSV input; the labels of {} go in a .npy given with --labels",
                    path.display()
                );
            }
            files.labels = args.labels.clone();
            DatasetSource::Npy(files)
        }
        DatasetSource::Csv(mut table) => {
            if args.labels.is_some() {
                bail!(
                    "--labels applies to a .npy input; the labels of {} are one of its columns: --label-column NAME",
                    path.display()
                );
            }
            table.label_column = args.label_column.clone();
            DatasetSource::Csv(table)
        }
        other => bail!("{other}: not a .npy or .csv file"),
    })
}

/// Reads the table (every row; the memory it takes checked first).
pub fn load(source: &DatasetSource) -> Result<Dataset> {
    let options = LoadOptions {
        download: false,
        progress: false,
        ..LoadOptions::default()
    };
    Ok(Dataset::load(source, Split::Train, &options)?)
}

/// Refuses a table whose rows are not as wide as the model's input.
pub fn check_width(
    data: &Dataset,
    source: &DatasetSource,
    model: &ContractiveAutoencoder,
    model_name: &str,
) -> Result<()> {
    if data.image_dim() != model.input_dim() {
        bail!(
            "{source}: {} values per row, but the model {model_name} takes {} inputs; use a model trained on data of this width (nothing was written)",
            data.image_dim(),
            model.input_dim()
        );
    }
    Ok(())
}

/// Each row's label as text (its class name where the source names classes); `None` when the
/// table has no labels.
pub fn labels_text(data: &Dataset) -> Option<Vec<String>> {
    if !data.is_labelled() {
        return None;
    }
    let names = data.class_names();
    Some(
        data.labels()
            .iter()
            .map(|&l| match names.and_then(|n| n.get(usize::from(l))) {
                Some(name) => name.clone(),
                None => l.to_string(),
            })
            .collect(),
    )
}
