//! `presets --dataset`: which presets fit one's own data and why not; and the conv preset on grey
//! images of another size than 28×28, trained where its layers decode that size and refused,
//! with a hint, where they do not.

use crate::helpers::{cli, s, stderr, stdout};
use std::path::Path;

use crate::own_data::write_png_folder_sized;

/// The line `presets` prints for `preset`.
fn line<'a>(listing: &'a str, preset: &str) -> &'a str {
    listing
        .lines()
        .find(|l| l.split_whitespace().next() == Some(preset))
        .unwrap_or_else(|| panic!("no line for {preset} in:\n{listing}"))
}

#[test]
fn presets_say_which_fit_a_table_and_an_image_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let csv = tmp.path().join("t.csv");
    std::fs::write(&csv, "a,b,c,kind\n0.1,0.2,0.3,x\n0.4,0.5,0.6,y\n").unwrap();
    let out = cli(&["presets", "--dataset", s(&csv), "--label-column", "kind"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    assert!(listing.contains("samples of 3 features"), "{listing}");
    assert!(
        line(&listing, "small").contains("fits: 3 inputs"),
        "{listing}"
    );
    assert!(
        line(&listing, "conv").contains("does not fit: a convolutional preset takes grey images"),
        "{listing}"
    );

    let fits = tmp.path().join("fits");
    write_png_folder_sized(&fits, 2, 20, 24);
    let out = cli(&["presets", "--dataset", s(&fits)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        line(&stdout(&out), "conv").contains("fits: 480 inputs"),
        "{}",
        stdout(&out)
    );
    let odd = tmp.path().join("odd");
    write_png_folder_sized(&odd, 2, 21, 21);
    let out = cli(&["presets", "--dataset", s(&odd)]);
    let listing = stdout(&out);
    assert!(
        line(&listing, "conv").contains("does not take 21×21 images"),
        "{listing}"
    );
    assert!(
        line(&listing, "deep").contains("fits: 441 inputs"),
        "{listing}"
    );
    let out = cli(&["presets", "--dataset", s(&odd), "--size", "28x28"]);
    assert!(
        line(&stdout(&out), "conv").contains("fits: 784 inputs"),
        "{}",
        stdout(&out)
    );

    // Without --dataset the list is as it always was; reading flags need a dataset.
    let out = cli(&["presets"]);
    assert!(
        line(&stdout(&out), "conv").contains("Hutchinson"),
        "{}",
        stdout(&out)
    );
    let out = cli(&["presets", "--size", "28x28"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("need --dataset"), "{}", stderr(&out));
    let out = cli(&["presets", "--dataset", s(&csv), "--channels", "1"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("--channels does not apply"),
        "{}",
        stderr(&out)
    );
}

/// One epoch of the conv preset on the CPU, a quarter of `dataset` held out.
fn train_conv(dataset: &Path, out: &Path) -> std::process::Output {
    cli(&[
        "train",
        "--dataset",
        s(dataset),
        "--test-fraction",
        "0.25",
        "--out",
        s(out),
        "--preset",
        "conv",
        "--epochs",
        "1",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ])
}

#[test]
fn the_conv_preset_trains_on_20x24_images_and_refuses_21x21_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let (data, run) = (tmp.path().join("pngs"), tmp.path().join("run"));
    write_png_folder_sized(&data, 4, 20, 24);
    let out = train_conv(&data, &run);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("done: 1 epochs"), "{}", stdout(&out));
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(
        (
            cfg["model"]["height"].as_u64(),
            cfg["model"]["width"].as_u64()
        ),
        (Some(20), Some(24))
    );
    assert!(run.join("reconstructions.png").is_file());

    let (odd, odd_run) = (tmp.path().join("odd"), tmp.path().join("odd-run"));
    write_png_folder_sized(&odd, 4, 21, 21);
    let out = train_conv(&odd, &odd_run);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("does not take 21×21 images") && err.contains("--size"),
        "{err}"
    );
    assert!(!odd_run.exists());
}
