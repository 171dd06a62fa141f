//! `encode` and `reconstruct` on a `.npy` array or CSV table: one output row per input row, labels
//! carried through, figures equal to the library's; `encode --scores` ranks a sample far from
//! the training data above every training sample, and gives an image the figures `reconstruct`
//! reports for it; wrong widths, missing files and outputs that are inputs refused with nothing
//! written.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use crate::helpers::{cli, default_model, s, stderr, stdout};

/// Row `i` of the training table: the pattern `up` (first half bright) or `down` (second half),
/// with a little deterministic noise, values in [0, 1].
fn pattern_row(i: usize) -> Vec<f32> {
    let up = i % 2 == 0;
    (0..8)
        .map(|j| {
            let noise = ((i * 31 + j * 17) % 10) as f32 / 100.0;
            if (j < 4) == up {
                0.99 - noise
            } else {
                0.01 + noise
            }
        })
        .collect()
}

/// A CSV with a header `a..h,kind`: rows given, each with its label.
pub(crate) fn write_csv(path: &Path, rows: &[(Vec<f32>, &str)]) {
    let mut text = String::from("a,b,c,d,e,f,g,h,kind\n");
    for (row, label) in rows {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        text.push_str(&format!("{},{label}\n", cells.join(",")));
    }
    std::fs::write(path, text).unwrap();
}

pub(crate) fn training_rows(n: usize) -> Vec<(Vec<f32>, &'static str)> {
    (0..n)
        .map(|i| (pattern_row(i), if i % 2 == 0 { "up" } else { "down" }))
        .collect()
}

/// Trains the small preset on 160 rows of the two patterns; returns the model file.
pub(crate) fn trained_model(dir: &Path) -> PathBuf {
    let csv = dir.join("train.csv");
    write_csv(&csv, &training_rows(160));
    let run = dir.join("run");
    let out = cli(&[
        "train",
        "--dataset",
        s(&csv),
        "--label-column",
        "kind",
        "--test-fraction",
        "0.2",
        "--preset",
        "small",
        "--epochs",
        "10",
        "--batch-size",
        "16",
        "--out",
        s(&run),
        "--device",
        "cpu",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    run.join("model.safetensors")
}

fn load_model(path: &Path) -> cae_core::ContractiveAutoencoder {
    cae_core::read_model(path, &Device::Cpu)
        .and_then(|m| m.model(DType::F32, &Device::Cpu))
        .unwrap()
}

/// The lines of a CSV file after its header, split into cells.
fn csv_rows(path: &Path) -> (String, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().to_string();
    let rows = lines
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    (header, rows)
}

/// A float32 .npy file's shape and values.
fn read_npy(path: &Path) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    let shape = header.split("'shape': (").nth(1).unwrap();
    let shape: Vec<usize> = shape[..shape.find(')').unwrap()]
        .split(',')
        .filter(|d| !d.trim().is_empty())
        .map(|d| d.trim().parse().unwrap())
        .collect();
    let values = bytes[10 + len..]
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (shape, values)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * (1.0 + b.abs())
}

#[test]
fn scores_rank_an_off_pattern_row_above_every_training_row_and_match_the_library() {
    let tmp = tempfile::tempdir().unwrap();
    let model_file = trained_model(tmp.path());
    // The first 40 training rows, then a row of neither pattern (alternating bright and dark).
    let mut rows = training_rows(40);
    let odd: Vec<f32> = (0..8)
        .map(|j| if j % 2 == 0 { 0.97 } else { 0.03 })
        .collect();
    rows.push((odd, "odd"));
    let probe = tmp.path().join("probe.csv");
    write_csv(&probe, &rows);
    let (codes, scores) = (tmp.path().join("codes.json"), tmp.path().join("scores.csv"));
    let out = cli(&[
        "encode",
        "--input",
        s(&probe),
        "--label-column",
        "kind",
        "--weights",
        s(&model_file),
        "--output",
        s(&codes),
        "--scores",
        s(&scores),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));

    let (header, lines) = csv_rows(&scores);
    assert_eq!(header, "row,label,reconstruction_loss,jacobian_frobenius");
    assert_eq!(lines.len(), 41);
    let loss = |line: &Vec<String>| line[2].parse::<f64>().unwrap();
    let jf = |line: &Vec<String>| line[3].parse::<f64>().unwrap();
    let (outlier, training) = lines.split_last().unwrap();
    assert_eq!((outlier[0].as_str(), outlier[1].as_str()), ("40", "odd"));
    let worst_training = training.iter().map(loss).fold(f64::MIN, f64::max);
    assert!(
        loss(outlier) > worst_training,
        "the off-pattern row scores {} but a training row scores {worst_training}",
        loss(outlier)
    );

    // The same figures computed through the library.
    let model = load_model(&model_file);
    let values: Vec<f32> = rows.iter().flat_map(|(r, _)| r.clone()).collect();
    let x = Tensor::from_vec(values, (41, 8), &Device::Cpu).unwrap();
    let x = model.prepare_inputs(&x).unwrap();
    let losses = model.sample_reconstruction_loss(&x).unwrap();
    let squares = model
        .jacobian_sq_norm(&x)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let library_codes = model.encode(&x).unwrap().to_vec2::<f32>().unwrap();
    for (i, line) in lines.iter().enumerate() {
        assert!(
            close(loss(line), losses[i]),
            "row {i}: {line:?} vs {}",
            losses[i]
        );
        let expected = f64::from(squares[i]).sqrt();
        assert!(close(jf(line), expected), "row {i}: {line:?} vs {expected}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&codes).unwrap()).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 41);
    assert_eq!(
        (items[1]["row"].as_u64(), items[1]["label"].as_str()),
        (Some(1), Some("down"))
    );
    for (item, expected) in items.iter().zip(&library_codes) {
        let code: Vec<f64> = item["code"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(code.len(), expected.len());
        for (a, b) in code.iter().zip(expected) {
            assert!(close(*a, f64::from(*b)), "{a} vs {b}");
        }
    }
}

#[test]
fn npy_inputs_give_npy_and_csv_codes_and_reconstructions_in_input_order() {
    let tmp = tempfile::tempdir().unwrap();
    let model_file = trained_model(tmp.path());
    let rows: Vec<f32> = (0..30).flat_map(pattern_row).collect();
    let (data, labels) = (tmp.path().join("x.npy"), tmp.path().join("y.npy"));
    let mut bytes = cae_data::encode_npy_header("<f4", &[30, 8]);
    bytes.extend(rows.iter().flat_map(|v| v.to_le_bytes()));
    std::fs::write(&data, bytes).unwrap();
    let mut bytes = cae_data::encode_npy_header("|u1", &[30]);
    bytes.extend((0..30u8).map(|i| i % 3));
    std::fs::write(&labels, bytes).unwrap();
    let weights = ["--weights", s(&model_file)];

    let codes = tmp.path().join("codes.npy");
    let mut args = vec!["encode", "-i", s(&data), "--format", "npy", "-o", s(&codes)];
    args.extend(weights);
    let out = cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let (shape, _) = read_npy(&codes);
    assert_eq!(shape, [30, 256]);

    let model = load_model(&model_file);
    let x = Tensor::from_vec(rows.clone(), (30, 8), &Device::Cpu).unwrap();
    let prepared = model.prepare_inputs(&x).unwrap();
    let expected = model
        .restore_outputs(&model.reconstruct(&prepared).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let recon = tmp.path().join("recon.npy");
    let mut args = vec!["reconstruct", "-i", s(&data), "-o", s(&recon)];
    args.extend(weights);
    let out = cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("30 rows of 8 values"),
        "{}",
        stdout(&out)
    );
    let (shape, values) = read_npy(&recon);
    assert_eq!(shape, [30, 8]);
    for (a, b) in values.iter().zip(&expected) {
        assert!(close(f64::from(*a), f64::from(*b)), "{a} vs {b}");
    }

    let recon_csv = tmp.path().join("recon.csv");
    let mut args = vec!["reconstruct", "-i", s(&data), "--labels", s(&labels)];
    args.extend(["-o", s(&recon_csv)]);
    args.extend(weights);
    let out = cli(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, lines) = csv_rows(&recon_csv);
    assert_eq!(header, "row,label,x0,x1,x2,x3,x4,x5,x6,x7");
    assert_eq!(lines.len(), 30);
    assert_eq!(lines[29][..2], ["29".to_string(), "2".to_string()]);
    let last: f64 = lines[29][9].parse().unwrap();
    assert!(close(last, f64::from(expected[29 * 8 + 7])));
}

#[test]
fn table_inputs_that_cannot_be_used_are_refused_with_nothing_written() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("narrow.csv");
    std::fs::write(&csv, "0.1,0.2,0.3\n0.4,0.5,0.6\n").unwrap();
    let out_file = tmp.path().join("codes.csv");
    let model = default_model();
    let refused = |args: &[&str], expect: &[&str]| {
        let out = cli(args);
        assert!(!out.status.success(), "{args:?} succeeded");
        let err = stderr(&out);
        for e in expect {
            assert!(err.contains(e), "{args:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    let encode = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["encode", "--weights", s(&model)];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect()
    };
    let run = |args: Vec<String>, expect: &[&str]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&args, expect);
    };

    // The default model takes 784 values; the table has 3.
    run(
        encode(&["-i", s(&csv), "--format", "csv", "-o", s(&out_file)]),
        &["narrow.csv", "3 values per row", "784 inputs"],
    );
    assert!(!out_file.exists());
    run(
        encode(&["-i", s(&tmp.path().join("absent.csv"))]),
        &["absent.csv", "cannot read"],
    );
    // An output that is the input, or two outputs that are one file.
    run(
        encode(&["-i", s(&csv), "--format", "csv", "-o", s(&csv)]),
        &["one of the inputs"],
    );
    assert_eq!(
        std::fs::read_to_string(&csv).unwrap(),
        "0.1,0.2,0.3\n0.4,0.5,0.6\n"
    );
    run(
        encode(&["-i", s(&csv), "-o", s(&out_file), "--scores", s(&out_file)]),
        &["named twice"],
    );
    run(
        encode(&["-i", s(&csv), "-i", s(&csv)]),
        &["must be the only --input"],
    );
    run(
        encode(&["-i", s(&csv), "--labels", s(&csv)]),
        &["--label-column NAME"],
    );
    run(
        encode(&["-i", s(&csv), "--label-column", "kind"]),
        &["narrow.csv", "kind"],
    );
    let recon = |extra: &[&str]| -> Vec<String> {
        let mut v = vec!["reconstruct", "--weights", s(&model), "-i", s(&csv)];
        v.extend_from_slice(extra);
        v.into_iter().map(String::from).collect()
    };
    run(recon(&[]), &["--output FILE.npy or FILE.csv"]);
    let png = tmp.path().join("r.png");
    run(recon(&["-o", s(&png)]), &["r.png", ".npy or .csv"]);
    assert!(!png.exists());
    let names = crate::helpers::files_in(tmp.path());
    assert_eq!(names, ["narrow.csv"]);
}

#[test]
fn image_scores_agree_with_reconstruct_on_the_same_digit() {
    let tmp = tempfile::tempdir().unwrap();
    let digit = tmp.path().join("one.png");
    crate::commands::write_gray_png(&digit);
    let scores = tmp.path().join("scores.csv");
    let out = cli(&["encode", "-i", s(&digit), "--scores", s(&scores)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (header, lines) = csv_rows(&scores);
    assert_eq!(header, "file,reconstruction_loss,jacobian_frobenius");
    assert_eq!(lines.len(), 1);
    assert!(lines[0][0].ends_with("one.png"));
    let figure = tmp.path().join("one.reconstruction.png");
    let out = cli(&["reconstruct", "-i", s(&digit), "-o", s(&figure), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // reconstruct reports f32 figures, one image at a time.
    let (loss, jf) = (
        lines[0][1].parse::<f64>().unwrap(),
        lines[0][2].parse::<f64>().unwrap(),
    );
    let rel = |a: f64, b: f64| (a - b).abs() / b.abs();
    assert!(
        rel(loss, line["bce"].as_f64().unwrap()) < 1e-5,
        "{loss} vs {line}"
    );
    assert!(
        rel(jf, line["jacobian_frobenius"].as_f64().unwrap()) < 1e-5,
        "{jf} vs {line}"
    );
}
