//! The flags for a dataset of one's own (`--labels`, `--label-column`, `--channels`, `--size`,
//! `--test-dataset`, `--test-fraction`; `train`, `eval`, `finetune`), checked once into a run's
//! recorded `DataOptions`; and what such data needs: its reading options applied to the source,
//! a test split, values in [0, 1] for the BCE loss, and a model sized to its samples.
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use cae_core::{Architecture, CaeConfig, ReconstructionLoss};
use cae_data::{Dataset, DatasetSource, SampleShape, Split, TestSplit};
use cae_train::{DataOptions, TestSource};
use clap::Args;

use crate::data::DataArgs;
use crate::tabular::TableArgs;

/// How a dataset of one's own is read (for `presets --dataset` too); each flag fits some kinds
/// of dataset only, which [`ReadArgs::check`] checks.
#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub table: TableArgs,
    /// Read an image folder as grey (1) or colour (3) images (default: as the first image is).
    #[arg(long, value_parser = ["1", "3"])]
    pub channels: Option<String>,
    /// Resize every image of an image folder to HxW pixels (default: the first image's size).
    #[arg(long, value_name = "HxW", value_parser = parse_size)]
    pub size: Option<(usize, usize)>,
}

/// The reading flags and the test split of a dataset of one's own.
#[derive(Debug, Clone, Args)]
pub struct OwnDataArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    /// The test set: a second dataset of the same kind (image folder, .npy or .csv file).
    #[arg(long, value_name = "PATH", conflicts_with = "test_fraction")]
    pub test_dataset: Option<PathBuf>,
    /// Hold out this fraction of the dataset as the test set, drawn with --seed.
    #[arg(long, value_name = "F")]
    pub test_fraction: Option<f64>,
}

/// `HxW`, e.g. `32x32`.
fn parse_size(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("write the size as HxW, e.g. 32x32, not `{s}`");
    let (h, w) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    match (h.trim().parse(), w.trim().parse()) {
        (Ok(h), Ok(w)) if h > 0 && w > 0 => Ok((h, w)),
        _ => Err(bad()),
    }
}

impl ReadArgs {
    /// Whether any of these flags was given.
    pub fn any_given(&self) -> bool {
        self.table.labels.is_some()
            || self.table.label_column.is_some()
            || self.channels.is_some()
            || self.size.is_some()
    }

    /// Refuses flags that do not fit the kind of `source`.
    pub fn check(&self, source: &DatasetSource) -> Result<()> {
        let kind_flags: [(&str, bool, bool); 4] = [
            (
                "--labels",
                self.table.labels.is_some(),
                matches!(source, DatasetSource::Npy(_)),
            ),
            (
                "--label-column",
                self.table.label_column.is_some(),
                matches!(source, DatasetSource::Csv(_)),
            ),
            (
                "--channels",
                self.channels.is_some(),
                matches!(source, DatasetSource::Images(_)),
            ),
            (
                "--size",
                self.size.is_some(),
                matches!(source, DatasetSource::Images(_)),
            ),
        ];
        for (flag, given, fits) in kind_flags {
            if given && !fits {
                bail!("{flag} does not apply to the dataset {source}");
            }
        }
        Ok(())
    }

    /// These flags as a run records them, with the test split `test`.
    fn data_options(&self, test: Option<TestSource>) -> DataOptions {
        DataOptions {
            labels: self
                .table
                .labels
                .as_deref()
                .map(|p| canonical_path(p).into()),
            label_column: self.table.label_column.clone(),
            channels: self.channels.as_deref().and_then(|c| c.parse().ok()),
            size: self.size,
            test,
        }
    }

    /// `source` read as these flags say (checked to fit it first).
    pub fn apply(&self, source: DatasetSource) -> Result<DatasetSource> {
        self.check(&source)?;
        Ok(apply(source, &self.data_options(None)))
    }
}

impl OwnDataArgs {
    /// Whether any of these flags was given.
    pub fn any_given(&self) -> bool {
        self.read.any_given() || self.test_dataset.is_some() || self.test_fraction.is_some()
    }

    /// The run's record of these flags for `source`, whose test fraction is drawn with `seed`;
    /// refuses flags that do not fit the kind of `source`, and a source without a test split of
    /// its own given none.
    pub fn options(&self, source: &DatasetSource, seed: u64) -> Result<DataOptions> {
        self.read.check(source)?;
        let test = match (&self.test_dataset, self.test_fraction) {
            (Some(path), _) => Some(TestSource::Dataset {
                path: canonical_path(path),
            }),
            (None, Some(fraction)) => Some(TestSource::Fraction { fraction, seed }),
            (None, None) if source.has_test_split() => None,
            (None, None) => bail!(
                "the dataset {source} has no test split of its own\n  hint: pass --test-dataset PATH \
                 (a second dataset of the same kind) or --test-fraction F (hold out a fraction, \
                 e.g. 0.2, drawn with --seed)"
            ),
        };
        Ok(self.read.data_options(test))
    }
}

/// The test set, and the training set when `with_train`, of `data`'s dataset: a named dataset's
/// or IDX directory's own splits, or one's own data read and split as `own` says (a test fraction
/// drawn with `seed`).
pub fn load_split(
    data: &DataArgs,
    own: &OwnDataArgs,
    seed: u64,
    with_train: bool,
    quiet: bool,
) -> Result<(Option<Dataset>, Dataset)> {
    let source = &data.dataset;
    if source.has_test_split() && !own.any_given() {
        let test = data.load(Split::Test, !quiet)?;
        let train = match with_train {
            true => Some(data.load(Split::Train, !quiet)?),
            false => None,
        };
        return Ok((train, test));
    }
    let opts = own.options(source, seed)?;
    let data = DataArgs {
        dataset: apply(source.clone(), &opts),
        ..data.clone()
    };
    let split = data.load_train_test(&test_split(&opts), !quiet)?;
    Ok((with_train.then_some(split.train), split.test))
}

/// `source` read with the recorded options.
pub fn apply(source: DatasetSource, opts: &DataOptions) -> DatasetSource {
    match source {
        DatasetSource::Images(mut folder) => {
            folder.channels = opts.channels.or(folder.channels);
            folder.size = opts.size.or(folder.size);
            DatasetSource::Images(folder)
        }
        DatasetSource::Npy(mut files) => {
            files.labels = opts.labels.clone().or(files.labels);
            DatasetSource::Npy(files)
        }
        DatasetSource::Csv(mut table) => {
            table.label_column = opts.label_column.clone().or(table.label_column);
            DatasetSource::Csv(table)
        }
        other => other,
    }
}

/// Where the test set comes from, as cae-data reads it; a test dataset is read as the training
/// set is.
pub fn test_split(opts: &DataOptions) -> TestSplit {
    match &opts.test {
        None => TestSplit::Own,
        Some(TestSource::Dataset { path }) => {
            let source = match path.parse::<DatasetSource>() {
                Ok(source) => source,
                Err(never) => match never {},
            };
            let opts = DataOptions {
                labels: None,
                ..opts.clone()
            };
            TestSplit::Source(apply(source, &opts))
        }
        Some(TestSource::Fraction { fraction, seed }) => TestSplit::Fraction {
            fraction: *fraction,
            seed: *seed,
        },
    }
}

/// A path as a run records it: absolute where it exists.
pub fn canonical_path(path: &Path) -> String {
    std::fs::canonicalize(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Refuses values outside [0, 1] (what the BCE loss needs) in `parts` of the file at `path`,
/// naming it and the range found.
pub fn check_unit_interval(parts: &[&cae_data::Dataset], path: &str) -> Result<()> {
    if parts.iter().all(|d| d.in_unit_interval()) {
        return Ok(());
    }
    let (min, max) = parts.iter().filter_map(|d| d.value_range()).fold(
        (f32::INFINITY, f32::NEG_INFINITY),
        |(lo, hi), (min, max)| (lo.min(min), hi.max(max)),
    );
    bail!(
        "{path}: values range from {min} to {max}; the binary cross-entropy loss needs them in \
         [0, 1]\n  hint: train with --loss mse (linear outputs, each feature standardised on the \
         training split), or rescale the data into [0, 1]"
    )
}

/// `model` trained with `loss` on `train`: for the squared error, with a standardisation fitted
/// on `train`.
pub fn with_loss(model: CaeConfig, loss: ReconstructionLoss, train: &Dataset) -> Result<CaeConfig> {
    let standardisation = match loss {
        ReconstructionLoss::Bce => None,
        ReconstructionLoss::Mse => Some(cae_train::fit_standardisation(train)?),
    };
    let model = CaeConfig {
        loss,
        standardisation,
        ..model
    };
    model.validate()?;
    Ok(model)
}

/// `model` sized to samples of `shape`: an MLP takes any number of values; a conv model grey
/// images whose size its layers decode back.
pub fn fit_model(model: CaeConfig, shape: SampleShape) -> Result<CaeConfig> {
    let (height, width) = match (&model.architecture, shape) {
        (Architecture::Mlp(_), shape) => (shape.height(), shape.dim() / shape.height()),
        (
            _,
            SampleShape::Image {
                height,
                width,
                channels: 1,
            },
        ) => (height, width),
        (_, shape) => bail!(
            "a convolutional preset takes grey images; this data is {shape}\n  hint: pick an MLP \
             preset (see `cae-cli presets`)"
        ),
    };
    let model = CaeConfig {
        height,
        width,
        ..model
    };
    if let Err(e) = model.validate() {
        if matches!(model.architecture, Architecture::Mlp(_)) {
            return Err(e.into());
        }
        bail!(
            "{e}: this convolutional preset does not take {height}×{width} images\n  hint: resize them \
             with --size (28x28 fits), or pick an MLP preset (see `cae-cli presets`)"
        );
    }
    Ok(model)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_and_bad_ones_say_how() {
        assert_eq!(parse_size("32x24"), Ok((32, 24)));
        assert_eq!(parse_size("8X8"), Ok((8, 8)));
        assert!(parse_size("32").unwrap_err().contains("HxW"));
        assert!(parse_size("0x4").is_err());
    }

    #[test]
    fn mlp_presets_take_any_dimension() {
        let mlp = CaeConfig::preset("small").unwrap();
        let features = |shape: SampleShape| {
            let values = vec![0.5; 2 * shape.dim()];
            cae_data::Dataset::new(cae_data::Storage::F32(values), shape, None).unwrap()
        };
        let fitted = fit_model(mlp, SampleShape::Features(7)).unwrap();
        assert_eq!(fitted.input_dim(), 7);
        let rgb = SampleShape::Image {
            height: 5,
            width: 4,
            channels: 3,
        };
        let fitted = fit_model(CaeConfig::preset("small").unwrap(), rgb).unwrap();
        assert_eq!(fitted.input_dim(), 60);
        let fitted = with_loss(fitted, ReconstructionLoss::Mse, &features(rgb)).unwrap();
        let standardisation = fitted.standardisation.unwrap();
        assert_eq!(standardisation.dim(), 60);
        assert!(standardisation.mean.iter().all(|&m| m == 0.5));
    }
}
