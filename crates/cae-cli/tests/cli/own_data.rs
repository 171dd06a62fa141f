//! `train` on one's own data: a folder of PNG images in class subdirectories, a `.npy` array with
//! a labels `.npy`, a CSV table; the test split from a second dataset or a seeded held-out
//! fraction, recorded in config.json; values outside [0, 1] refused for the BCE loss, naming the
//! file and the range, with nothing written.

use std::path::Path;

use crate::helpers::{cli, s, stderr, stdout};

/// `train` for one epoch of the small preset on the CPU, with `extra` flags.
pub(crate) fn train(dataset: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "--dataset",
        s(dataset),
        "--out",
        s(out),
        "--preset",
        "small",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
    ];
    args.extend_from_slice(extra);
    cli(&args)
}

fn config(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Two classes of `n` grey 6×5 PNG images each: a bright left half, or a bright right half.
pub(crate) fn write_png_folder(dir: &Path, n: usize) {
    write_png_folder_sized(dir, n, 6, 5);
}

/// [`write_png_folder`] with images of `height × width` pixels.
pub(crate) fn write_png_folder_sized(dir: &Path, n: usize, height: u32, width: u32) {
    for (class, left) in [("left", true), ("right", false)] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for i in 0..n {
            let img = image::GrayImage::from_fn(width, height, |x, _| {
                let bright = (x < width / 2) == left;
                image::Luma([if bright { 200 + i as u8 } else { 10 }])
            });
            img.save(dir.join(class).join(format!("{i}.png"))).unwrap();
        }
    }
}

/// A `.npy` of `n` × `d` float32 values in [0, 1].
fn write_npy(path: &Path, n: usize, d: usize) {
    let mut bytes = cae_data::encode_npy_header("<f4", &[n, d]);
    for k in 0..n * d {
        bytes.extend_from_slice(&(((k * 7) % 11) as f32 / 10.0).to_le_bytes());
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn trains_on_a_png_class_folder_with_a_held_out_fraction_and_resumes_on_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("pngs"), tmp.path().join("run"));
    write_png_folder(&data, 8);
    let out = train(&data, &run, &["--test-fraction", "0.25", "--seed", "3"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("all 4 test samples"),
        "{}",
        stdout(&out)
    );
    let cfg = config(&run);
    assert_eq!(
        (
            cfg["model"]["height"].as_u64(),
            cfg["model"]["width"].as_u64()
        ),
        (Some(6), Some(5))
    );
    assert_eq!(cfg["data"]["test"]["kind"], "fraction");
    assert_eq!(cfg["data"]["test"]["seed"], 3);
    assert!(run.join("reconstructions.png").is_file());

    let out = cli(&[
        "train",
        "--resume",
        s(&run),
        "--epochs",
        "2",
        "--device",
        "cpu",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("done: 2 epochs"), "{}", stdout(&out));
    let other = tmp.path().join("other");
    write_png_folder(&other, 3);
    let out = cli(&[
        "train",
        "--resume",
        s(&run),
        "--dataset",
        s(&other),
        "--device",
        "cpu",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--dataset"), "{}", stderr(&out));
}

#[test]
fn trains_on_a_labelled_npy_with_a_test_npy_and_draws_no_picture_of_features() {
    let tmp = tempfile::tempdir().unwrap();
    let (train_npy, test_npy) = (tmp.path().join("train.npy"), tmp.path().join("test.npy"));
    write_npy(&train_npy, 20, 9);
    write_npy(&test_npy, 6, 9);
    let labels = tmp.path().join("labels.npy");
    let mut bytes = cae_data::encode_npy_header("|u1", &[20]);
    bytes.extend((0..20u8).map(|i| i % 3));
    std::fs::write(&labels, bytes).unwrap();
    let run = tmp.path().join("run");
    let out = train(
        &train_npy,
        &run,
        &["--labels", s(&labels), "--test-dataset", s(&test_npy)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("all 6 test samples"),
        "{}",
        stdout(&out)
    );
    assert_eq!(config(&run)["model"]["width"], 9);
    assert_eq!(config(&run)["data"]["test"]["kind"], "dataset");
    assert!(run.join("model.safetensors").is_file());
    assert!(!run.join("reconstructions.png").exists());
}

#[test]
fn trains_on_a_csv_table_in_the_unit_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("table.csv");
    let mut text = String::from("a,b,c,kind\n");
    for i in 0..30 {
        text.push_str(&format!(
            "{},{},0.5,{}\n",
            (i % 10) as f32 / 10.0,
            1.0 - (i % 4) as f32 / 4.0,
            i % 2
        ));
    }
    std::fs::write(&csv, text).unwrap();
    let run = tmp.path().join("run");
    let out = train(
        &csv,
        &run,
        &["--label-column", "kind", "--test-fraction", "0.2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(config(&run)["model"]["width"], 3);
    assert_eq!(config(&run)["data"]["label_column"], "kind");
}

#[test]
fn refuses_real_values_with_bce_and_a_source_without_a_test_split_writing_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("readings.csv");
    std::fs::write(&csv, "1.5,-3.5\n7.25,0.5\n0.1,0.2\n0.3,0.4\n0.5,0.6\n").unwrap();
    let run = tmp.path().join("run");
    let out = train(&csv, &run, &["--test-fraction", "0.4"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("readings.csv") && err.contains("-3.5 to 7.25"),
        "{err}"
    );
    assert!(err.contains("[0, 1]"), "{err}");
    assert!(!run.exists());

    let out = train(&csv, &run, &[]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--test-fraction"), "{}", stderr(&out));
    assert!(!run.exists());
    let out = train(&csv, &run, &["--test-fraction", "0.4", "--channels", "3"]);
    assert!(
        stderr(&out).contains("--channels does not apply"),
        "{}",
        stderr(&out)
    );
    assert!(!run.exists());
}
