//! CSV tables of numbers: one sample per row, comma-separated; a header row optional (found
//! by itself, or said); an optional label column named in the header, holding class ids
//! (0–255) or class names. Values are kept as `f32`; a cell that is not a finite number, or a
//! row with another number of cells, is an error naming the line and column.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::memory::Budget;
use crate::shape::SampleShape;
use crate::storage::Storage;

/// A CSV table to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CsvTable {
    /// The `.csv` file.
    pub path: PathBuf,
    /// Whether the first row names the columns.
    pub header: CsvHeader,
    /// The column that holds the labels, by its name in the header; `None`: every column is a
    /// feature and the dataset is unlabelled.
    pub label_column: Option<String>,
}

impl CsvTable {
    /// The table at `path`, header found by itself, no label column.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            header: CsvHeader::Auto,
            label_column: None,
        }
    }
}

/// Whether a CSV table starts with a header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CsvHeader {
    /// A header when some cell of the first row is not a number.
    #[default]
    Auto,
    /// The first row is a header.
    Present,
    /// Every row is data.
    Absent,
}

/// Reads `table` into a dataset of `f32` features.
pub(crate) fn load(table: &CsvTable, budget: Option<Budget>) -> Result<Dataset, DataError> {
    let path = table.path.as_path();
    let io = |error| DataError::Io {
        path: path.to_path_buf(),
        error,
    };
    let mut lines = BufReader::new(File::open(path).map_err(io)?)
        .lines()
        .enumerate()
        .map(|(i, line)| line.map(|l| (i + 1, l)))
        .filter(|line| !matches!(line, Ok((_, l)) if l.trim().is_empty()));
    let Some(first) = lines.next().transpose().map_err(io)? else {
        return Err(DataError::NoSamples {
            path: path.to_path_buf(),
        });
    };
    let first_cells = cells(&first.1);
    let is_header = match table.header {
        CsvHeader::Present => true,
        CsvHeader::Absent => false,
        CsvHeader::Auto => first_cells.iter().any(|c| c.parse::<f32>().is_err()),
    };
    let names: Option<Vec<String>> = is_header.then(|| first_cells.clone());
    let width = first_cells.len();
    let label_at = match (&table.label_column, &names) {
        (None, _) => None,
        (Some(name), Some(names)) => Some(names.iter().position(|n| n == name).ok_or_else(
            || DataError::CsvLabelColumn {
                path: path.to_path_buf(),
                name: name.clone(),
                columns: format!("the columns are {}", names.join(", ")),
            },
        )?),
        (Some(name), None) => {
            return Err(DataError::CsvLabelColumn {
                path: path.to_path_buf(),
                name: name.clone(),
                columns: "the first row is data, not a header naming the columns".to_string(),
            })
        }
    };
    let dim = width - usize::from(label_at.is_some());
    if dim == 0 {
        return Err(DataError::NoSamples {
            path: path.to_path_buf(),
        });
    }

    let mut values: Vec<f32> = Vec::new();
    let mut labels = Labels::default();
    let data_rows = (!is_header).then_some(Ok(first)).into_iter().chain(lines);
    for row in data_rows {
        let (line, text) = row.map_err(io)?;
        let row_cells = cells(&text);
        if row_cells.len() != width {
            return Err(DataError::CsvRagged {
                path: path.to_path_buf(),
                line,
                found: row_cells.len(),
                expected: width,
            });
        }
        for (column, cell) in row_cells.into_iter().enumerate() {
            if Some(column) == label_at {
                labels.push(cell, path)?;
                continue;
            }
            let problem = match cell.parse::<f32>() {
                Ok(v) if v.is_finite() => {
                    values.push(v);
                    continue;
                }
                Ok(_) => "is not a finite number (NaN, infinite, or beyond f32's range)",
                Err(_) => "is not a number",
            };
            return Err(DataError::CsvCell {
                path: path.to_path_buf(),
                line,
                column: column + 1,
                name: names.as_ref().map(|n| n[column].clone()),
                cell,
                problem,
            });
        }
        Budget::check(budget, path, 4 * values.len() as u64)?;
    }
    if values.is_empty() {
        return Err(DataError::NoSamples {
            path: path.to_path_buf(),
        });
    }
    let (ids, class_names) = match label_at {
        Some(_) => {
            let (ids, names) = labels.finish();
            (Some(ids), names)
        }
        None => (None, None),
    };
    let data = Dataset::checked(Storage::F32(values), SampleShape::Features(dim), ids, path)?;
    match class_names {
        Some(names) => data.with_class_names(names),
        None => Ok(data),
    }
}

/// The cells of a line: split at commas, trimmed, surrounding double quotes removed.
fn cells(line: &str) -> Vec<String> {
    line.split(',')
        .map(|c| {
            let c = c.trim();
            c.strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .unwrap_or(c)
                .to_string()
        })
        .collect()
}

/// Label cells as they are read: each distinct text once, and its number per row.
#[derive(Debug, Default)]
struct Labels {
    distinct: HashMap<String, u16>,
    rows: Vec<u16>,
}

impl Labels {
    fn push(&mut self, cell: String, path: &Path) -> Result<(), DataError> {
        let code = match self.distinct.get(&cell) {
            Some(&code) => code,
            None => {
                let next = self.distinct.len();
                if next == 256 {
                    return Err(DataError::TooManyClasses {
                        path: path.to_path_buf(),
                        count: next + 1,
                    });
                }
                self.distinct.insert(cell, next as u16);
                next as u16
            }
        };
        self.rows.push(code);
        Ok(())
    }

    /// Class ids: the numbers themselves when every label is one in 0..=255, else the rank of
    /// each name in sorted order, with the names.
    fn finish(self) -> (Vec<u8>, Option<Vec<String>>) {
        let mut by_code = vec![String::new(); self.distinct.len()];
        for (text, &code) in &self.distinct {
            by_code[usize::from(code)] = text.clone();
        }
        let numbers: Option<Vec<u8>> = by_code.iter().map(|t| t.parse::<u8>().ok()).collect();
        if let Some(numbers) = numbers {
            let ids = self.rows.iter().map(|&c| numbers[usize::from(c)]).collect();
            return (ids, None);
        }
        let mut names = by_code.clone();
        names.sort();
        let id_of: Vec<u8> = by_code
            .iter()
            // invariant: every code's text is among the sorted names, and there are at most
            // 256 of them (checked in `push`), so its position fits in a byte.
            .map(|t| names.binary_search(t).map_or(0, |i| i as u8))
            .collect();
        let ids = self.rows.iter().map(|&c| id_of[usize::from(c)]).collect();
        (ids, Some(names))
    }
}
