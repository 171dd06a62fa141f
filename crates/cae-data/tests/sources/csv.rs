//! CSV tables: header detection, label columns, and malformed tables.

use std::path::Path;

use cae_data::{
    CsvHeader, CsvTable, DataError, Dataset, DatasetSource, SampleShape, Split, Storage,
};

use crate::{batch_rows, check_shuffled_batches, message_names, opts, write};

fn load(path: &Path, header: CsvHeader, label: Option<&str>) -> Result<Dataset, DataError> {
    let table = CsvTable {
        path: path.to_path_buf(),
        header,
        label_column: label.map(str::to_string),
    };
    Dataset::load(&DatasetSource::Csv(table), Split::Train, &opts())
}

#[test]
fn header_and_named_label_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sensors.csv");
    write(
        &path,
        "temp, \"kind\",pressure\n1.5,b,-2\n\n0.25,a,1e3\r\n3,b,0\n",
    );
    let data = load(&path, CsvHeader::Auto, Some("kind")).unwrap();
    assert_eq!(data.shape(), SampleShape::Features(2));
    assert_eq!(
        data.storage(),
        &Storage::F32(vec![1.5, -2.0, 0.25, 1000.0, 3.0, 0.0])
    );
    assert_eq!(data.class_names().unwrap(), ["a", "b"]);
    assert_eq!(data.labels(), [1, 0, 1]);
    assert!(!data.in_unit_interval());
    assert_eq!(batch_rows(&data)[1], [0.25, 1000.0]);
    check_shuffled_batches(&data);

    // Without a label column every column is a feature... but "kind" is no number.
    let err = load(&path, CsvHeader::Auto, None).unwrap_err();
    message_names(
        &err,
        &[
            "sensors.csv",
            "line 2, column 2 (kind)",
            "\"b\" is not a number",
        ],
    );
}

#[test]
fn numeric_labels_and_no_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    write(&path, "0.5,1,7\n0.25,0,3\n");
    let data = load(&path, CsvHeader::Auto, None).unwrap();
    assert_eq!(
        (data.len(), data.image_dim(), data.is_labelled()),
        (2, 3, false)
    );

    let err = load(&path, CsvHeader::Auto, Some("y")).unwrap_err();
    message_names(&err, &["t.csv", "\"y\"", "not a header"]);

    // Said to have a header: the first row names the columns.
    let data = load(&path, CsvHeader::Present, Some("1")).unwrap();
    assert_eq!(data.len(), 1);
    assert_eq!(data.labels(), [0]);
    assert!(data.class_names().is_none());

    write(&path, "x,label\n0.5,3\n0.1,9\n");
    let data = load(&path, CsvHeader::Auto, Some("label")).unwrap();
    assert_eq!((data.labels(), data.num_classes()), (&[3u8, 9][..], 10));
    let err = load(&path, CsvHeader::Auto, Some("nope")).unwrap_err();
    message_names(&err, &["no column named \"nope\"", "x, label"]);
}

#[test]
fn malformed_tables_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let check = |text: &str, names: &[&str]| {
        write(&path, text);
        let err = load(&path, CsvHeader::Auto, None).unwrap_err();
        message_names(&err, &[&["bad.csv"], names].concat())
    };
    check(
        "a,b\n1,2\n3,4,5\n",
        &["line 3 has 3 cells", "first row has 2"],
    );
    check("1,2\n3\n", &["line 2 has 1 cells"]);
    check(
        "a,b\n1,2\n3,NaN\n",
        &["line 3, column 2 (b)", "\"NaN\"", "not a finite number"],
    );
    check(
        "1,2\ninf,4\n",
        &["line 2, column 1", "\"inf\"", "not a finite number"],
    );
    check(
        "1,2\n3,1e39\n",
        &["line 2, column 2", "not a finite number"],
    );
    check("1,2\n3,\n", &["line 2, column 2", "\"\" is not a number"]);
    check(
        "a,b\n1,2\n3,x4\n",
        &["line 3, column 2 (b)", "\"x4\" is not a number"],
    );
    check("", &["holds no samples"]);
    check("a,b\n", &["holds no samples"]);
}
