//! `.npy` arrays: the element types and shapes read, labels, and malformed files.

use std::path::Path;

use cae_data::{
    DataError, Dataset, DatasetSource, ElementType, NpyFiles, SampleShape, Split, Storage,
};

use crate::{
    batch_rows, check_shuffled_batches, f32_bytes, message_names, npy, npy_with_dict, opts, write,
};

fn load(data: &Path, labels: Option<&Path>) -> Result<Dataset, DataError> {
    let files = NpyFiles {
        data: data.to_path_buf(),
        labels: labels.map(Path::to_path_buf),
    };
    Dataset::load(&DatasetSource::Npy(files), Split::Train, &opts())
}

#[test]
fn uint8_images_with_int64_labels() {
    let dir = tempfile::tempdir().unwrap();
    let (data, labels) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    let pixels: Vec<u8> = (0..3 * 2 * 2).map(|i| (i * 20) as u8).collect();
    write(&data, npy("|u1", &[3, 2, 2], &pixels));
    let ids: Vec<u8> = [4i64, 0, 255]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write(&labels, npy("<i8", &[3], &ids));

    let source: DatasetSource = data.to_str().unwrap().parse().unwrap();
    assert!(matches!(source, DatasetSource::Npy(_)), "{source:?}");
    let set = load(&data, Some(&labels)).unwrap();
    assert_eq!(set.shape(), SampleShape::grey(2, 2));
    assert_eq!(set.element_type(), ElementType::U8);
    assert_eq!(set.images(), pixels);
    assert_eq!(set.labels(), [4, 0, 255]);
    assert!(set.is_labelled() && set.in_unit_interval());
    assert_eq!(
        batch_rows(&set)[1],
        [80.0 / 255.0, 100.0 / 255.0, 120.0 / 255.0, 140.0 / 255.0]
    );
    check_shuffled_batches(&set);
}

#[test]
fn float32_and_float64_features_stay_real_valued() {
    let dir = tempfile::tempdir().unwrap();
    let values = [-1.5f32, 2.25, 0.0, 1e-3, 100.0, -7.0];
    let f32_path = dir.path().join("f32.npy");
    write(&f32_path, npy("<f4", &[2, 3], &f32_bytes(&values)));
    let set = load(&f32_path, None).unwrap();
    assert_eq!(set.shape(), SampleShape::Features(3));
    assert_eq!(set.storage(), &Storage::F32(values.to_vec()));
    assert!(!set.is_labelled() && !set.in_unit_interval());
    assert_eq!(
        batch_rows(&set),
        [values[..3].to_vec(), values[3..].to_vec()]
    );
    check_shuffled_batches(&set);

    // float64 is narrowed to f32.
    let wide: Vec<f64> = vec![0.1, 0.2, 0.3, 0.4];
    let f64_path = dir.path().join("f64.npy");
    let bytes: Vec<u8> = wide.iter().flat_map(|v| v.to_le_bytes()).collect();
    write(&f64_path, npy("<f8", &[1, 2, 2], &bytes));
    let set = load(&f64_path, None).unwrap();
    assert_eq!(set.shape(), SampleShape::grey(2, 2));
    assert_eq!(set.element_type(), ElementType::F32);
    assert_eq!(
        set.sample_f32(0),
        wide.iter().map(|&v| v as f32).collect::<Vec<_>>()
    );
    assert!(set.in_unit_interval());

    // N×H×W×C.
    let rgb = dir.path().join("rgb.npy");
    write(&rgb, npy("|u1", &[2, 1, 2, 3], &[7; 12]));
    let set = load(&rgb, None).unwrap();
    assert_eq!(
        set.shape(),
        SampleShape::Image {
            height: 1,
            width: 2,
            channels: 3
        }
    );
}

#[test]
fn malformed_arrays_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.npy");
    let check = |bytes: Vec<u8>, names: &[&str]| {
        write(&path, bytes);
        let err = load(&path, None).unwrap_err();
        message_names(&err, &[&["bad.npy"], names].concat());
        err
    };
    let fortran = npy_with_dict(
        "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }",
        &[0; 16],
    );
    check(fortran, &["Fortran", "'fortran_order': True"]);
    check(
        npy("<i4", &[2, 2], &[0; 16]),
        &["uint8, float32 or float64", "'<i4'"],
    );
    check(npy(">f4", &[2, 2], &[0; 16]), &["big-endian"]);
    check(npy("<c8", &[2, 2], &[0; 32]), &["not supported", "'<c8'"]);
    check(b"PK\x03\x04 not numpy".to_vec(), &["not a .npy file"]);
    check(
        npy_with_dict("{'descr': [('a', '<f4')], 'shape': (2,)}", &[0; 8]),
        &["malformed header"],
    );
    check(npy("<f4", &[5], &[0; 20]), &["N×D"]);
    let err = check(
        npy("<f4", &[4, 3], &[0; 40]),
        &["48 bytes", "found 40", "truncated"],
    );
    assert!(matches!(err, DataError::Length { .. }), "{err}");
    let err = check(npy("|u1", &[2, 2], &[0; 5]), &["holds more"]);
    assert!(matches!(err, DataError::TrailingData { .. }), "{err}");
    let err = check(
        npy("<f4", &[2, 2], &f32_bytes(&[0.0, 1.0, f32::NAN, 3.0])),
        &["sample 1, feature 0", "NaN"],
    );
    assert!(matches!(err, DataError::NonFinite { .. }), "{err}");
    check(npy("<f4", &[0, 4], &[]), &["no samples"]);
}

#[test]
fn labels_must_match_and_be_class_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (data, labels) = (dir.path().join("x.npy"), dir.path().join("labels.npy"));
    write(&data, npy("|u1", &[3, 2], &[0; 6]));

    write(&labels, npy("<i4", &[2], &[0; 8]));
    let err = load(&data, Some(&labels)).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::CountMismatch {
                n_images: 3,
                n_labels: 2,
                ..
            }
        ),
        "{err}"
    );

    let ids: Vec<u8> = [1i16, 300, 2]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    write(&labels, npy("<i2", &[3, 1], &ids));
    let err = load(&data, Some(&labels)).unwrap_err();
    message_names(&err, &["labels.npy", "sample 1", "300"]);

    write(&labels, npy("<f4", &[3], &[0; 12]));
    let err = load(&data, Some(&labels)).unwrap_err();
    message_names(&err, &["labels.npy", "labels must be integers"]);
}

#[test]
fn the_header_is_checked_against_the_memory_limit_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.npy");
    // The header announces 1000×1000 floats (4 MB); the body is there too.
    write(&path, npy("<f4", &[1000, 1000], &vec![0u8; 4_000_000]));
    let mut options = opts();
    options.memory_limit = Some(1 << 20);
    let err = Dataset::load_npy(&NpyFiles::new(&path), &options).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::OverMemoryBudget {
                bytes: 4_000_000,
                ..
            }
        ),
        "{err}"
    );
    message_names(&err, &["big.npy", "configured memory limit"]);
}
