//! Test sets: a held-out seeded fraction (recorded), a separate source, the source's own split;
//! and per-feature statistics, checked against sums written out by hand.

use cae_data::{load_train_test, CsvTable, DataError, Dataset, DatasetSource, NpyFiles, TestSplit};

use crate::{f32_bytes, npy, opts, write};

fn table(n: usize) -> (tempfile::TempDir, DatasetSource) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    let text: String = (0..n).map(|i| format!("{i},{}\n", i * i)).collect();
    write(&path, format!("a,b\n{text}"));
    (dir, DatasetSource::Csv(CsvTable::new(path)))
}

#[test]
fn a_seeded_fraction_is_held_out_and_recorded() {
    let (_dir, source) = table(50);
    let test = TestSplit::Fraction {
        fraction: 0.2,
        seed: 11,
    };
    let split = load_train_test(&source, &test, &opts()).unwrap();
    let held = split.held_out.clone().unwrap();
    assert_eq!((split.train.len(), split.test.len()), (40, 10));
    assert_eq!((held.fraction, held.seed, held.total), (0.2, 11, 50));
    // Each test sample is the source's row at the recorded index (feature `a` is the index).
    for (row, &i) in held.test_indices.iter().enumerate() {
        assert_eq!(split.test.sample_f32(row), [i as f32, (i * i) as f32]);
    }
    let train_a: Vec<f32> = (0..split.train.len())
        .map(|r| split.train.sample_f32(r)[0])
        .collect();
    let expected: Vec<f32> = held.train_indices().iter().map(|&i| i as f32).collect();
    assert_eq!(train_a, expected);
    // Deterministic: the same seed draws the same split; another seed another.
    let again = load_train_test(&source, &test, &opts()).unwrap();
    assert_eq!(again.held_out.unwrap().test_indices, held.test_indices);
    let other = TestSplit::Fraction {
        fraction: 0.2,
        seed: 12,
    };
    let other = load_train_test(&source, &other, &opts()).unwrap();
    assert_ne!(other.held_out.unwrap().test_indices, held.test_indices);

    let bad = TestSplit::Fraction {
        fraction: 1.0,
        seed: 0,
    };
    let err = load_train_test(&source, &bad, &opts()).unwrap_err();
    assert!(matches!(err, DataError::BadTestFraction { .. }), "{err}");
}

#[test]
fn a_separate_test_source_or_none() {
    let (_dir, source) = table(5);
    let npy_dir = tempfile::tempdir().unwrap();
    let path = npy_dir.path().join("test.npy");
    write(&path, npy("<f4", &[3, 2], &f32_bytes(&[1.0; 6])));
    let test = TestSplit::Source(DatasetSource::Npy(NpyFiles::new(&path)));
    let split = load_train_test(&source, &test, &opts()).unwrap();
    assert_eq!((split.train.len(), split.test.len()), (5, 3));
    assert!(split.held_out.is_none());

    let err = load_train_test(&source, &TestSplit::Own, &opts()).unwrap_err();
    assert!(matches!(err, DataError::NoTestSplit { .. }), "{err}");
    assert!(err.to_string().contains("rows.csv"), "{err}");
}

#[test]
fn feature_stats_match_sums_by_hand() {
    let (_dir, source) = table(7);
    let data = Dataset::load(&source, cae_data::Split::Train, &opts()).unwrap();
    let stats = data.feature_stats().unwrap();
    let b: Vec<f64> = (0..7).map(|i| f64::from(i * i)).collect();
    let mean_b = b.iter().sum::<f64>() / 7.0;
    let std_b = (b.iter().map(|x| (x - mean_b).powi(2)).sum::<f64>() / 7.0).sqrt();
    assert_eq!(stats.mean[0], 3.0);
    assert!((stats.std[0] - 2.0).abs() < 1e-12, "{}", stats.std[0]);
    assert!((stats.mean[1] - mean_b).abs() < 1e-12);
    assert!((stats.std[1] - std_b).abs() < 1e-12);
}
