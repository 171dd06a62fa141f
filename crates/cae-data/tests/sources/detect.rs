//! Telling the kinds of path apart, and the error for a path that is none of them.

use cae_data::{DataError, Dataset, DatasetSource, LoadOptions, Split};

use crate::{message_names, npy, opts, write};

#[test]
fn each_kind_by_what_the_path_is() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(&root.join("a.npy"), npy("|u1", &[1, 1], &[0]));
    write(&root.join("b.CSV"), "1,2\n");
    let idx = root.join("idx");
    std::fs::create_dir(&idx).unwrap();
    write(
        &idx.join("t10k-images-idx3-ubyte"),
        cae_data::idx::encode_idx(&[1, 1, 1], &[0]).unwrap(),
    );
    let nested = root.join("nested/class/deeper");
    std::fs::create_dir_all(&nested).unwrap();
    image::GrayImage::new(1, 1)
        .save(nested.join("x.png"))
        .unwrap();

    let kind = |p: &std::path::Path| DatasetSource::detect(p).unwrap();
    assert!(matches!(kind(&root.join("a.npy")), DatasetSource::Npy(_)));
    assert!(matches!(kind(&root.join("b.CSV")), DatasetSource::Csv(_)));
    assert_eq!(kind(&idx), DatasetSource::Dir(idx.clone()));
    assert!(matches!(
        kind(&root.join("nested")),
        DatasetSource::Images(_)
    ));
    let parsed: DatasetSource = "Fashion_MNIST".parse().unwrap();
    assert_eq!(parsed, DatasetSource::FashionMnist);
    assert!(parsed.path().is_none() && parsed.has_test_split());
    let images = kind(&root.join("nested"));
    assert_eq!(
        images.to_string(),
        root.join("nested").display().to_string()
    );
    assert!(!images.has_test_split());
    let data = Dataset::load(&images, Split::Train, &opts()).unwrap();
    assert_eq!(data.class_names().unwrap(), ["class"]);
}

#[test]
fn a_path_of_no_known_kind_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    write(&text, "hello");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = dir.path().join("missing");
    for (path, what) in [
        (&text, "neither .npy nor .csv"),
        (&empty, "neither IDX files"),
        (&missing, "No such file"),
    ] {
        let err = DatasetSource::detect(path).unwrap_err();
        assert!(matches!(err, DataError::UnknownSource { .. }), "{err}");
        message_names(
            &err,
            &[
                &path.display().to_string(),
                what,
                "a .npy file or a .csv file",
            ],
        );
        // Parsed, such a path is a directory source whose loading says the same.
        let source: DatasetSource = path.to_str().unwrap().parse().unwrap();
        assert_eq!(source, DatasetSource::Dir(path.clone()));
        let err = Dataset::load(&source, Split::Train, &LoadOptions::default()).unwrap_err();
        message_names(&err, &[&path.display().to_string(), what]);
    }
}
