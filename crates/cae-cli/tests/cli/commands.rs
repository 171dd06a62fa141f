//! End-to-end tests of the `cae-cli` binary: `reconstruct` and `encode` on images generated here,
//! every kind of bad input, and argument errors of `train`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cae_core::CaeConfig;
use candle_core::{DType, Device, Tensor};
use image::{ImageBuffer, Luma, Rgb, Rgba};

use crate::helpers::{cli, default_model, files_in, s, stderr, stdout};

const SCALE: u32 = 8;

/// The expected size of a reconstruction figure: input and reconstruction side by side.
fn figure_size() -> (u32, u32) {
    let side = 28 * SCALE;
    (2 * side + cae_train::figures::GRID_SEPARATOR_PX, side)
}

/// The default model's code size, read from the model file rather than hard-coded.
fn default_code_dim() -> usize {
    cae_core::read_model(&default_model(), &Device::Cpu)
        .expect("the default model loads")
        .config
        .code_dim()
        .expect("the default model has a code size")
}

/// Ink of a thick "1": a vertical bar off-centre in a w×h canvas.
fn one(x: u32, y: u32, w: u32, h: u32) -> bool {
    let (cx, top, bottom) = (w * 2 / 3, h / 6, h * 5 / 6);
    x + 8 >= cx && x <= cx + 8 && y >= top && y <= bottom
}

/// Ink of a ring "0" centred at (cx, cy).
fn ring(x: u32, y: u32, cx: f32, cy: f32) -> bool {
    let (dx, dy) = ((x as f32 - cx) / 0.7, y as f32 - cy);
    let r = (dx * dx + dy * dy).sqrt();
    (30.0..=42.0).contains(&r)
}

/// A dark "1" on light paper, grey 8-bit.
fn gray_one(w: u32, h: u32) -> ImageBuffer<Luma<u8>, Vec<u8>> {
    ImageBuffer::from_fn(w, h, |x, y| Luma([if one(x, y, w, h) { 25 } else { 235 }]))
}

pub(crate) fn write_gray_png(path: &Path) {
    gray_one(200, 150).save(path).unwrap();
}

fn write_rgb_png(path: &Path) {
    ImageBuffer::from_fn(120, 120, |x, y| {
        if ring(x, y, 55.0, 65.0) {
            Rgb([20u8, 30, 140])
        } else {
            Rgb([250, 245, 230])
        }
    })
    .save(path)
    .unwrap();
}

/// A black "0" on a fully transparent background (a drawing exported with no paper).
fn write_rgba_png(path: &Path) {
    ImageBuffer::from_fn(100, 100, |x, y| {
        if ring(x, y, 50.0, 50.0) {
            Rgba([0u8, 0, 0, 255])
        } else {
            Rgba([0, 0, 0, 0])
        }
    })
    .save(path)
    .unwrap();
}

fn write_16bit_png(path: &Path) {
    ImageBuffer::from_fn(90, 90, |x, y| {
        Luma([if one(x, y, 90, 90) { 1000u16 } else { 64000 }])
    })
    .save(path)
    .unwrap();
}

fn write_jpeg(path: &Path) {
    ImageBuffer::from_fn(160, 160, |x, y| {
        if ring(x, y, 90.0, 70.0) {
            Rgb([10u8, 10, 10])
        } else {
            Rgb([240, 240, 240])
        }
    })
    .save(path)
    .unwrap();
}

/// A PNG chunk with its CRC.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A tiny file whose header claims an 8000×8000 16-bit RGBA image (512 MB decoded): a bomb.
fn write_bomb(path: &Path) {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&8000u32.to_be_bytes());
    ihdr.extend_from_slice(&8000u32.to_be_bytes());
    ihdr.extend_from_slice(&[16, 6, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IDAT", &[0x78, 0x9c, 0x03, 0x00]));
    png.extend(chunk(b"IEND", &[]));
    std::fs::write(path, png).unwrap();
}

fn assert_figure(path: &Path) {
    let dims = image::image_dimensions(path)
        .unwrap_or_else(|e| panic!("{} is not a readable PNG: {e}", path.display()));
    assert_eq!(dims, figure_size(), "{}", path.display());
}

/// Writes a generated test image to a path.
type WriteImage = fn(&Path);

#[test]
fn reconstructs_every_supported_kind_of_image() {
    let dir = tempfile::tempdir().unwrap();
    let writers: [(&str, WriteImage); 5] = [
        ("gray.png", write_gray_png),
        ("rgb.png", write_rgb_png),
        ("rgba.png", write_rgba_png),
        ("deep.png", write_16bit_png),
        ("photo.jpg", write_jpeg),
    ];
    for (name, write) in writers {
        let input = dir.path().join(name);
        write(&input);
        let out = cli(&["reconstruct", "--input", s(&input), "--device", "cpu"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let stem = name.split('.').next().unwrap();
        let figure = dir.path().join(format!("{stem}.reconstruction.png"));
        assert_figure(&figure);
        let text = stdout(&out);
        assert!(text.contains("BCE"), "{name}: {text}");
        assert!(text.contains(s(&figure)), "{name}: {text}");
        assert!(text.contains("‖J‖_F"), "{name}: {text}");
    }
}

#[test]
fn reconstruct_output_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("digit.png");
    write_gray_png(&input);
    let figure = dir.path().join("mine.png");
    let out = cli(&["reconstruct", "-i", s(&input), "-o", s(&figure), "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_figure(&figure);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(line["output"], s(&figure));
    let bce = line["bce"].as_f64().unwrap();
    assert!(bce.is_finite() && bce > 0.0 && bce < 0.7, "BCE {bce}");
    let jf = line["jacobian_frobenius"].as_f64().unwrap();
    assert!(jf.is_finite() && jf > 0.0, "‖J‖_F {jf}");
    assert_eq!(line["inverted"], true);
    assert_eq!(line["original_size"], serde_json::json!([200, 150]));
}

#[test]
fn reconstructs_a_directory_into_an_output_dir() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write_gray_png(&inputs.join("a.png"));
    write_rgb_png(&inputs.join("b.PNG"));
    write_jpeg(&inputs.join("c.jpeg"));
    std::fs::write(inputs.join("notes.txt"), "not an image").unwrap();
    let outputs = dir.path().join("out");
    let out = cli(&[
        "reconstruct",
        "-i",
        s(&inputs),
        "--output-dir",
        s(&outputs),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    assert_eq!(
        files_in(&outputs),
        [
            "a.reconstruction.png",
            "b.reconstruction.png",
            "c.reconstruction.png"
        ]
    );
    for name in files_in(&outputs) {
        assert_figure(&outputs.join(name));
    }

    // Next to the inputs; a second run must not take the first run's figures as inputs.
    for _ in 0..2 {
        let out = cli(&["reconstruct", "-i", s(&inputs)]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    }
}

#[test]
fn output_needs_a_single_input() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.png"), dir.path().join("b.png"));
    write_gray_png(&a);
    write_gray_png(&b);
    let figure = dir.path().join("out.png");
    let out = cli(&["reconstruct", "-i", s(&a), "-i", s(&b), "-o", s(&figure)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--output-dir"), "{}", stderr(&out));
    assert!(!figure.exists());
}

/// Writes one bad input, next to a good one, and checks that the run fails naming it, writing nothing.
fn check_bad_input(name: &str, write: impl FnOnce(&Path), expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    write_gray_png(&good);
    let bad = dir.path().join(name);
    write(&bad);
    let before = files_in(dir.path());
    for sub in ["reconstruct", "encode"] {
        let codes = dir.path().join("codes.json");
        let mut args = vec![sub, "-i", s(&good), "-i", s(&bad)];
        if sub == "encode" {
            args.extend(["-o", s(&codes)]);
        }
        let out = cli(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{sub} {name} succeeded");
        assert!(
            err.contains(name),
            "{sub} {name}: stderr does not name the file: {err}"
        );
        assert!(
            err.to_lowercase().contains(expect),
            "{sub} {name}: expected `{expect}` in: {err}"
        );
        assert_eq!(files_in(dir.path()), before, "{sub} {name} wrote something");
    }
}

#[test]
fn empty_file_is_refused() {
    check_bad_input("empty.png", |p| std::fs::write(p, b"").unwrap(), "empty");
}

#[test]
fn non_image_is_refused() {
    check_bad_input(
        "letter.png",
        |p| std::fs::write(p, "Dear user, this is text.").unwrap(),
        "not a png or jpeg",
    );
}

#[test]
fn truncated_png_is_refused() {
    check_bad_input(
        "cut.png",
        |p| {
            let full = dir_png_bytes();
            std::fs::write(p, &full[..full.len() / 2]).unwrap();
        },
        "truncated or corrupt",
    );
}

#[test]
fn corrupt_png_is_refused() {
    check_bad_input(
        "garbled.png",
        |p| {
            let mut bytes = dir_png_bytes();
            let n = bytes.len();
            for b in &mut bytes[60..n - 20] {
                *b ^= 0x5a;
            }
            std::fs::write(p, bytes).unwrap();
        },
        "corrupt",
    );
}

fn dir_png_bytes() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.png");
    write_gray_png(&p);
    std::fs::read(p).unwrap()
}

#[test]
fn blank_image_is_refused() {
    check_bad_input(
        "blank.png",
        |p| {
            ImageBuffer::from_pixel(64, 64, Luma([255u8]))
                .save(p)
                .unwrap()
        },
        "no ink",
    );
}

#[test]
fn decompression_bomb_is_refused() {
    check_bad_input("bomb.png", write_bomb, "too large");
}

#[test]
fn encode_formats() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write_gray_png(&inputs.join("a.png"));
    write_rgb_png(&inputs.join("b.png"));
    write_jpeg(&inputs.join("c.jpg"));
    let code_dim = default_code_dim();

    let out = cli(&["encode", "-i", s(&inputs), "--format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(items.len(), 3);
    assert!(items[0]["file"].as_str().unwrap().ends_with("a.png"));
    for item in &items {
        let code = item["code"].as_array().unwrap();
        assert_eq!(code.len(), code_dim);
        assert!(code.iter().all(|v| v.as_f64().unwrap().is_finite()));
    }

    let out = cli(&["encode", "-i", s(&inputs), "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 4);
    let header: Vec<&str> = rows[0].split(',').collect();
    assert_eq!(header.len(), code_dim + 1);
    assert_eq!(&header[..3], ["file", "c0", "c1"]);
    for row in &rows[1..] {
        assert_eq!(row.split(',').count(), code_dim + 1);
    }
    // The same codes as the JSON.
    let first: f64 = rows[1].split(',').nth(1).unwrap().parse().unwrap();
    assert!((first - items[0]["code"][0].as_f64().unwrap()).abs() < 1e-6);

    let npy = dir.path().join("codes.npy");
    let out = cli(&["encode", "-i", s(&inputs), "--format", "npy", "-o", s(&npy)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0);
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.contains("'descr': '<f4'"), "{header}");
    assert!(header.contains("'fortran_order': False"), "{header}");
    assert!(
        header.contains(&format!("'shape': (3, {code_dim})")),
        "{header}"
    );
    assert!(header.ends_with('\n'));
    assert_eq!(bytes.len(), 10 + len + 3 * code_dim * 4);
    let v0 = f32::from_le_bytes(bytes[10 + len..14 + len].try_into().unwrap());
    assert!((f64::from(v0) - items[0]["code"][0].as_f64().unwrap()).abs() < 1e-6);

    // npy is binary: it needs a file.
    let out = cli(&["encode", "-i", s(&inputs), "--format", "npy"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--output"), "{}", stderr(&out));
}

#[test]
fn weights_file_with_another_config_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let config = CaeConfig::preset("small").unwrap();
    let varmap = cae_core::init_varmap(&config, 7, DType::F32, &Device::Cpu).unwrap();
    let model = dir.path().join("small.safetensors");
    let bytes = cae_core::model_to_bytes(&config, &varmap, &BTreeMap::new()).unwrap();
    std::fs::write(&model, bytes).unwrap();
    let input = dir.path().join("d.png");
    write_gray_png(&input);
    let out = cli(&["encode", "-i", s(&input), "--weights", s(&model)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let items: Vec<serde_json::Value> = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        items[0]["code"].as_array().unwrap().len(),
        config.code_dim().unwrap()
    );
    let out = cli(&["reconstruct", "-i", s(&input), "--weights", s(&model)]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn weights_that_are_not_safetensors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("d.png");
    write_gray_png(&input);
    let weights = dir.path().join("model.safetensors");
    std::fs::write(&weights, "this is not a model").unwrap();
    let before = files_in(dir.path());
    for sub in ["reconstruct", "encode"] {
        let out = cli(&[sub, "-i", s(&input), "--weights", s(&weights)]);
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(err.contains(s(&weights)), "{err}");
        assert!(err.contains("--weights"), "{err}");
        assert_eq!(files_in(dir.path()), before);
    }
    let missing = dir.path().join("missing.safetensors");
    let out = cli(&["reconstruct", "-i", s(&input), "--weights", s(&missing)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("missing.safetensors"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn weights_of_the_wrong_shape_are_refused_naming_the_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let config = CaeConfig::preset(cae_core::DEFAULT_PRESET).unwrap();
    let specs = cae_core::param_specs(&config).unwrap();
    let mut tensors = BTreeMap::new();
    for (i, spec) in specs.iter().enumerate() {
        let shape = if i == 0 {
            vec![3, 5]
        } else {
            spec.shape.clone()
        };
        tensors.insert(
            spec.name.clone(),
            Tensor::zeros(shape, DType::F32, &Device::Cpu).unwrap(),
        );
    }
    let mut metadata = BTreeMap::new();
    metadata.insert(
        cae_core::CONFIG_KEY.to_string(),
        serde_json::to_string(&config).unwrap(),
    );
    let weights = dir.path().join("wrong.safetensors");
    std::fs::write(
        &weights,
        cae_core::tensors_to_bytes(&tensors, &metadata).unwrap(),
    )
    .unwrap();
    let input = dir.path().join("d.png");
    write_gray_png(&input);
    let out = cli(&["reconstruct", "-i", s(&input), "--weights", s(&weights)]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&specs[0].name), "{err}");
    assert!(err.contains("wrong.safetensors"), "{err}");
    assert!(!dir.path().join("d.reconstruction.png").exists());
}

#[test]
fn missing_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.png");
    let out = cli(&["reconstruct", "-i", s(&missing)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nope.png"), "{}", stderr(&out));
    let empty = dir.path().join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    let out = cli(&["encode", "-i", s(&empty)]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("empty-dir"), "{}", stderr(&out));
}

/// `train` with one bad argument: a non-zero exit, a message naming the problem, no run directory.
fn check_train_rejects(bad: &[&str], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let run: PathBuf = dir.path().join("run");
    let mut args = vec![
        "train",
        "--out",
        s(&run),
        "--offline",
        "--data-dir",
        s(&data),
    ];
    args.extend_from_slice(bad);
    let out = cli(&args);
    assert!(!out.status.success(), "{bad:?} succeeded");
    let err = stderr(&out);
    assert!(
        err.to_lowercase().contains(expect),
        "{bad:?}: expected `{expect}` in: {err}"
    );
    assert!(!run.exists(), "{bad:?} created the run directory");
    assert!(files_in(&data).is_empty(), "{bad:?} wrote data");
}

#[test]
fn train_rejects_a_zero_batch_size() {
    check_train_rejects(&["--batch-size", "0"], "batch size");
}

#[test]
fn train_rejects_a_negative_lambda() {
    check_train_rejects(&["--lambda", "-1"], "lambda");
}

#[test]
fn train_rejects_an_unknown_preset() {
    check_train_rejects(&["--preset", "nope"], "nope");
}

#[test]
fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("digit.png");
    write_gray_png(&input);
    let original = std::fs::read(&input).unwrap();
    // The same file by another spelling, too.
    let other_spelling = dir.path().join(".").join("digit.png");
    for args in [
        vec!["reconstruct", "-i", s(&input), "-o", s(&input)],
        vec!["reconstruct", "-i", s(&input), "-o", s(&other_spelling)],
        vec!["encode", "-i", s(&input), "-o", s(&input)],
        vec![
            "encode",
            "-i",
            s(&input),
            "--format",
            "csv",
            "-o",
            s(&other_spelling),
        ],
    ] {
        let out = cli(&args);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(
            stderr(&out).contains("one of the inputs"),
            "{args:?}: {}",
            stderr(&out)
        );
        assert_eq!(
            std::fs::read(&input).unwrap(),
            original,
            "{args:?} overwrote the input"
        );
    }
    assert_eq!(files_in(dir.path()), ["digit.png"]);
}

#[test]
fn an_unusable_output_directory_is_reported_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("digit.png");
    write_gray_png(&input);
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_a_file = file.join("out");
    // A model that does not load would fail later: the output check must come first.
    let bad_weights = dir.path().join("bad.safetensors");
    std::fs::write(&bad_weights, "not a model").unwrap();
    let out = cli(&[
        "reconstruct",
        "-i",
        s(&input),
        "--output-dir",
        s(&under_a_file),
        "--weights",
        s(&bad_weights),
    ]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("a-file") && !err.contains("bad.safetensors"),
        "{err}"
    );
    let out = cli(&[
        "encode",
        "-i",
        s(&input),
        "-o",
        s(&dir.path().join("nope/codes.json")),
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not exist"), "{}", stderr(&out));
}

#[test]
fn a_directory_is_written_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write_gray_png(&inputs.join("a.png"));
    write_gray_png(&inputs.join("b.png"));
    let outputs = dir.path().join("out");
    std::fs::create_dir(&outputs).unwrap();
    // b's figure cannot be written: a directory has its name.
    std::fs::create_dir(outputs.join("b.reconstruction.png")).unwrap();
    let out = cli(&["reconstruct", "-i", s(&inputs), "--output-dir", s(&outputs)]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("b.reconstruction.png"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        files_in(&outputs),
        ["b.reconstruction.png"],
        "a's figure was written alone"
    );
}

#[cfg(unix)]
#[test]
fn image_names_that_are_not_utf8_are_not_skipped() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let inputs = dir.path().join("in");
    std::fs::create_dir(&inputs).unwrap();
    write_gray_png(&inputs.join("plain.png"));
    let odd = inputs.join(std::ffi::OsStr::from_bytes(b"caf\xe9.png"));
    write_gray_png(&odd);
    let out = cli(&["encode", "-i", s(&inputs), "--format", "csv"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 3, "{}", stdout(&out));
    let out = cli(&["reconstruct", "-i", s(&inputs)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(inputs
        .join(std::ffi::OsStr::from_bytes(b"caf\xe9.reconstruction.png"))
        .exists());
}

#[test]
fn model_files_with_non_finite_weights_or_an_unknown_format_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("d.png");
    write_gray_png(&input);
    let config = CaeConfig::preset("small").unwrap();
    let specs = cae_core::param_specs(&config).unwrap();
    let write = |name: &str, nan_in: Option<&str>, format: &str| {
        let mut tensors = BTreeMap::new();
        for spec in &specs {
            let mut t = Tensor::zeros(spec.shape.clone(), DType::F32, &Device::Cpu).unwrap();
            if Some(spec.name.as_str()) == nan_in {
                t = (t + f64::NAN).unwrap();
            }
            tensors.insert(spec.name.clone(), t);
        }
        let metadata = BTreeMap::from([
            (
                cae_core::CONFIG_KEY.to_string(),
                serde_json::to_string(&config).unwrap(),
            ),
            (cae_core::FORMAT_KEY.to_string(), format.to_string()),
        ]);
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            cae_core::tensors_to_bytes(&tensors, &metadata).unwrap(),
        )
        .unwrap();
        path
    };
    let nan = write("nan.safetensors", Some(&specs[1].name), "1");
    let out = cli(&["encode", "-i", s(&input), "--weights", s(&nan)]);
    assert!(
        !out.status.success(),
        "NaN weights accepted: {}",
        stdout(&out)
    );
    assert!(stderr(&out).contains(&specs[1].name), "{}", stderr(&out));
    let future = write("future.safetensors", None, "99");
    let out = cli(&["reconstruct", "-i", s(&input), "--weights", s(&future)]);
    assert!(!out.status.success(), "format 99 accepted");
    assert!(stderr(&out).contains("99"), "{}", stderr(&out));
    assert!(!dir.path().join("d.reconstruction.png").exists());
}
