//! `cae-cli encode`: the model's codes of digit images, for use as features elsewhere.
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};

use crate::digits::{batch, collect_inputs, load_all};
use crate::outputs;
use crate::weights::ModelArgs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// A JSON array of {"file": ..., "code": [...]}.
    Json,
    /// A header `file,c0,c1,...` then one row per image.
    Csv,
    /// A float32 NumPy array [N, code_dim] (.npy v1.0), rows in input order; needs --output.
    Npy,
}

#[derive(Debug, Args)]
#[command(after_help = "\
Each image is preprocessed as for `reconstruct` and encoded by the model. All inputs are read and \
checked first; if any cannot be used, every problem is reported, the exit code is non-zero and \
nothing is written. Files are written atomically. Directory inputs take every .png/.jpg/.jpeg \
inside (sorted, not recursive), except *.reconstruction.png outputs.")]
pub struct EncodeArgs {
    /// Image of a digit (PNG or JPEG), or a directory of them; repeat for more.
    #[arg(long, short, required = true, value_name = "PATH")]
    pub input: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
    /// Output file (default: standard output; required for npy).
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

pub fn run(args: EncodeArgs) -> Result<()> {
    if args.format == Format::Npy && args.output.is_none() {
        bail!("--format npy writes binary data: add --output FILE (e.g. --output codes.npy)");
    }
    let files = collect_inputs(&args.input)?;
    if let Some(output) = &args.output {
        let mut read = files.clone();
        read.extend(args.model.weights.clone());
        outputs::check(std::slice::from_ref(output), &read, None)?;
    }
    let (model, device) = args.model.load()?;
    let digits = load_all(&files)?;
    let x = batch(&digits, &device)?;
    let codes = model
        .encode(&x)
        .and_then(|c| c.flatten_from(1).map_err(Into::into))
        .and_then(|c| c.to_dtype(candle_core::DType::F32).map_err(Into::into))
        .and_then(|c| c.to_vec2::<f32>().map_err(Into::into))
        .with_context(|| format!("{} failed to encode the images", args.model.source().name()))?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let code_dim = codes.first().map_or(0, Vec::len);

    let bytes = match args.format {
        Format::Json => {
            let items: Vec<_> = names
                .iter()
                .zip(&codes)
                .map(|(file, code)| serde_json::json!({ "file": file, "code": code }))
                .collect();
            let mut s = serde_json::to_string(&items)?;
            s.push('\n');
            s.into_bytes()
        }
        Format::Csv => csv(&names, &codes, code_dim).into_bytes(),
        Format::Npy => npy(&codes, code_dim),
    };
    match &args.output {
        Some(path) => outputs::write_all(&[(path.clone(), bytes)], None)?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(&bytes)
                .and_then(|()| out.flush())
                .context("cannot write the codes to standard output")?;
        }
    }
    Ok(())
}

fn csv(names: &[String], codes: &[Vec<f32>], code_dim: usize) -> String {
    let mut s = String::from("file");
    for i in 0..code_dim {
        s.push_str(&format!(",c{i}"));
    }
    s.push('\n');
    for (name, code) in names.iter().zip(codes) {
        s.push_str(&csv_field(name));
        for v in code {
            s.push_str(&format!(",{v}"));
        }
        s.push('\n');
    }
    s
}

/// RFC 4180 quoting when the field needs it.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// A little-endian float32 `[N, code_dim]` array in NumPy's .npy format, version 1.0.
pub fn npy(codes: &[Vec<f32>], code_dim: usize) -> Vec<u8> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({}, {}), }}",
        codes.len(),
        code_dim
    );
    // As NumPy does: pad so that magic + version + length + header (with its '\n') is a
    // multiple of 64 bytes, so the data is aligned.
    let preamble = MAGIC.len() + 2 + 2;
    let total = preamble + header.len() + 1;
    header.push_str(&" ".repeat((64 - total % 64) % 64));
    header.push('\n');
    // invariant: the header is a fixed dict plus two numbers, padded to under 128 bytes.
    let header_len = u16::try_from(header.len()).expect("an npy header is short");
    let mut out = Vec::with_capacity(preamble + header.len() + codes.len() * code_dim * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&header_len.to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in codes.iter().flatten() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_well_formed() {
        let bytes = npy(&[vec![1.0, 2.0], vec![3.0, 4.0], vec![5.0, 6.0]], 2);
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
        let s = csv(
            &["a,b.png".into(), "plain.png".into()],
            &[vec![0.5], vec![1.0]],
            1,
        );
        assert_eq!(s, "file,c0\n\"a,b.png\",0.5\nplain.png,1\n");
    }
}
