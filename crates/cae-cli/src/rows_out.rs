//! The tables `encode` and `reconstruct` write, one row per sample in input order: each sample
//! named by its file (image inputs) or its row index (a `.npy` or CSV input), with its label where
//! the input has labels; as JSON, CSV or a float32 `.npy` array; and the `--scores` table.
use crate::per_sample::Score;

/// How the samples are named.
#[derive(Debug, Clone)]
pub struct SampleIds {
    /// The input files, or `None` for the rows of a table (named by their index from 0).
    pub files: Option<Vec<String>>,
    /// Each sample's label, when the input has labels.
    pub labels: Option<Vec<String>>,
}

impl SampleIds {
    /// The name of the id column: `file` or `row`.
    fn column(&self) -> &'static str {
        if self.files.is_some() {
            "file"
        } else {
            "row"
        }
    }

    /// Sample `i`'s id as a CSV field.
    fn csv_id(&self, i: usize) -> String {
        match &self.files {
            Some(files) => csv_field(&files[i]),
            None => i.to_string(),
        }
    }

    /// The header's id and label columns, and each row's, as CSV text ending in a comma.
    fn csv_prefix(&self, i: Option<usize>) -> String {
        let mut s = match i {
            Some(i) => self.csv_id(i),
            None => self.column().to_string(),
        };
        if let Some(labels) = &self.labels {
            s.push(',');
            s.push_str(&match i {
                Some(i) => csv_field(&labels[i]),
                None => "label".to_string(),
            });
        }
        s
    }
}

/// A JSON array of `{"file": …, KEY: [...]}` or `{"row": i, "label": …, KEY: [...]}`.
pub fn json(
    ids: &SampleIds,
    values: &[f32],
    width: usize,
    key: &str,
) -> serde_json::Result<Vec<u8>> {
    let items: Vec<serde_json::Value> = values
        .chunks(width.max(1))
        .enumerate()
        .map(|(i, row)| {
            let mut item = serde_json::Map::new();
            let id = match &ids.files {
                Some(files) => serde_json::json!(files[i]),
                None => serde_json::json!(i),
            };
            item.insert(ids.column().into(), id);
            if let Some(labels) = &ids.labels {
                item.insert("label".into(), serde_json::json!(labels[i]));
            }
            item.insert(key.into(), serde_json::json!(row));
            serde_json::Value::Object(item)
        })
        .collect();
    let mut s = serde_json::to_string(&items)?;
    s.push('\n');
    Ok(s.into_bytes())
}

/// A header (`file` or `row`, `label` if any, then `PREFIX0, PREFIX1, …`), then one row per sample.
pub fn csv(ids: &SampleIds, values: &[f32], width: usize, prefix: &str) -> Vec<u8> {
    let mut s = ids.csv_prefix(None);
    for i in 0..width {
        s.push_str(&format!(",{prefix}{i}"));
    }
    s.push('\n');
    for (i, row) in values.chunks(width.max(1)).enumerate() {
        s.push_str(&ids.csv_prefix(Some(i)));
        for v in row {
            s.push_str(&format!(",{v}"));
        }
        s.push('\n');
    }
    s.into_bytes()
}

/// A little-endian float32 `[samples, width]` array in NumPy's .npy format, version 1.0.
pub fn npy(values: &[f32], width: usize) -> Vec<u8> {
    let rows = values.len().checked_div(width).unwrap_or(0);
    let mut out = cae_data::encode_npy_header("<f4", &[rows, width]);
    out.reserve(values.len() * 4);
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// `--scores`: `file` or `row`, `label` if any, `reconstruction_loss`, `jacobian_frobenius`.
pub fn scores_csv(ids: &SampleIds, scores: &[Score]) -> Vec<u8> {
    let mut s = ids.csv_prefix(None);
    s.push_str(",reconstruction_loss,jacobian_frobenius\n");
    for (i, score) in scores.iter().enumerate() {
        s.push_str(&format!(
            "{},{},{}\n",
            ids.csv_prefix(Some(i)),
            score.reconstruction_loss,
            score.jacobian_frobenius
        ));
    }
    s.into_bytes()
}

/// RFC 4180 quoting when the field needs it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(names: &[&str]) -> SampleIds {
        SampleIds {
            files: Some(names.iter().map(|n| n.to_string()).collect()),
            labels: None,
        }
    }

    #[test]
    fn npy_header_is_aligned_and_well_formed() {
        let bytes = npy(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
        assert!(header.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }"));
        assert!(header.ends_with('\n'));
        assert_eq!(bytes.len(), 10 + len + 6 * 4);
        assert_eq!(&bytes[10 + len..10 + len + 4], &1.0f32.to_le_bytes());
    }

    #[test]
    fn csv_quotes_awkward_names() {
        let s = csv(&files(&["a,b.png", "plain.png"]), &[0.5, 1.0], 1, "c");
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "file,c0\n\"a,b.png\",0.5\nplain.png,1\n"
        );
    }

    #[test]
    fn rows_carry_their_index_and_label() {
        let ids = SampleIds {
            files: None,
            labels: Some(vec!["cat".into(), "a,b".into()]),
        };
        let s = csv(&ids, &[0.5, 1.0, 2.0, 3.0], 2, "x");
        assert_eq!(
            String::from_utf8(s).unwrap(),
            "row,label,x0,x1\n0,cat,0.5,1\n1,\"a,b\",2,3\n"
        );
        let j: serde_json::Value =
            serde_json::from_slice(&json(&ids, &[0.5, 1.0, 2.0, 3.0], 2, "code").unwrap()).unwrap();
        assert_eq!(j[1]["row"], 1);
        assert_eq!(j[1]["label"], "a,b");
        assert_eq!(j[1]["code"][1], 3.0);
        let score = Score {
            reconstruction_loss: 0.25,
            jacobian_frobenius: 2.0,
        };
        assert_eq!(
            String::from_utf8(scores_csv(&ids, &[score, score])).unwrap(),
            "row,label,reconstruction_loss,jacobian_frobenius\n0,cat,0.25,2\n1,\"a,b\",0.25,2\n"
        );
    }
}
