//! Image folders: class subdirectories, grey and colour, resizing, and malformed folders.

use std::path::Path;

use cae_data::{DataError, Dataset, DatasetSource, ElementType, ImageFolder, SampleShape, Split};
use image::{GrayImage, Rgb, RgbImage};

use crate::{batch_rows, check_shuffled_batches, message_names, opts};

/// A `width × height` grey PNG whose pixel at (x, y) is `seed + 10·y + x`.
fn grey_png(path: &Path, width: u32, height: u32, seed: u8) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    GrayImage::from_fn(width, height, |x, y| {
        image::Luma([seed + (10 * y + x) as u8])
    })
    .save(path)
    .unwrap();
}

fn load(folder: ImageFolder) -> Result<Dataset, DataError> {
    Dataset::load(&DatasetSource::Images(folder), Split::Train, &opts())
}

#[test]
fn class_folders_give_labels_names_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    grey_png(&root.join("dog/b.png"), 3, 2, 100);
    grey_png(&root.join("cat/2.png"), 3, 2, 50);
    grey_png(&root.join("cat/1.png"), 3, 2, 0);
    std::fs::write(root.join("cat/notes.txt"), "not an image").unwrap();

    let source: DatasetSource = root.to_str().unwrap().parse().unwrap();
    assert!(matches!(source, DatasetSource::Images(_)), "{source:?}");
    let data = Dataset::load(&source, Split::Train, &opts()).unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data.shape(), SampleShape::grey(2, 3));
    assert_eq!(data.element_type(), ElementType::U8);
    assert_eq!(data.class_names().unwrap(), ["cat", "dog"]);
    assert_eq!(data.labels(), [0, 0, 1]);
    assert_eq!((data.num_classes(), data.is_labelled()), (2, true));
    assert!(data.in_unit_interval());
    // Sorted: cat/1.png, cat/2.png, dog/b.png.
    assert_eq!(data.image(0), [0, 1, 2, 10, 11, 12]);
    assert_eq!(data.image(1), [50, 51, 52, 60, 61, 62]);
    assert_eq!(data.image(2)[5], 112);
    let rows = batch_rows(&data);
    assert_eq!(rows[2][5], 112.0 / 255.0);
    check_shuffled_batches(&data);
    // A folder has no test split of its own.
    let err = Dataset::load(&source, Split::Test, &opts()).unwrap_err();
    assert!(matches!(err, DataError::NoTestSplit { .. }), "{err}");
}

#[test]
fn colour_grey_and_resizing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Uniform colours, so resizing keeps every pixel's value exactly.
    RgbImage::from_pixel(4, 4, Rgb([200, 100, 0]))
        .save(root.join("a.png"))
        .unwrap();
    RgbImage::from_pixel(8, 6, Rgb([0, 50, 250]))
        .save(root.join("b.png"))
        .unwrap();

    let colour = load(ImageFolder {
        size: Some((2, 3)),
        ..ImageFolder::new(root)
    })
    .unwrap();
    assert_eq!(
        colour.shape(),
        SampleShape::Image {
            height: 2,
            width: 3,
            channels: 3
        }
    );
    assert!(!colour.is_labelled());
    assert_eq!(colour.num_classes(), 0);
    assert_eq!(&colour.image(0)[..6], [200, 100, 0, 200, 100, 0]);
    assert_eq!(&colour.image(1)[15..], [0, 50, 250]);

    let grey = load(ImageFolder {
        channels: Some(1),
        size: Some((5, 5)),
        ..ImageFolder::new(root)
    })
    .unwrap();
    assert_eq!(grey.shape(), SampleShape::grey(5, 5));
    // Rec. 709 luma of (200, 100, 0): 0.2126·200 + 0.7152·100 = 114.04.
    assert!(
        grey.image(0).iter().all(|&p| p.abs_diff(114) <= 1),
        "{:?}",
        grey.image(0)
    );

    let err = load(ImageFolder {
        channels: Some(2),
        ..ImageFolder::new(root)
    })
    .unwrap_err();
    message_names(&err, &["channels (1 or 3)"]);
}

#[test]
fn jpeg_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("photo.JPG");
    RgbImage::from_pixel(16, 8, Rgb([90, 90, 90]))
        .save_with_format(&path, image::ImageFormat::Jpeg)
        .unwrap();
    let data = load(ImageFolder::new(dir.path())).unwrap();
    assert_eq!(data.shape().dim(), 16 * 8 * 3);
    assert!(data.image(0).iter().all(|&p| p.abs_diff(90) <= 3));
}

#[test]
fn mixed_sizes_without_a_size_name_both_files() {
    let dir = tempfile::tempdir().unwrap();
    grey_png(&dir.path().join("a.png"), 4, 3, 0);
    grey_png(&dir.path().join("b.png"), 4, 3, 0);
    grey_png(&dir.path().join("c.png"), 5, 3, 0);
    let err = load(ImageFolder::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::MixedImageSizes { .. }), "{err}");
    message_names(&err, &["a.png", "4×3", "c.png", "5×3", "resized"]);
    // With a size they are all resized.
    let data = load(ImageFolder {
        size: Some((3, 4)),
        ..ImageFolder::new(dir.path())
    })
    .unwrap();
    assert_eq!(data.len(), 3);
}

#[test]
fn malformed_folders_are_clear_errors() {
    // An empty class folder.
    let dir = tempfile::tempdir().unwrap();
    grey_png(&dir.path().join("one/a.png"), 2, 2, 0);
    std::fs::create_dir(dir.path().join("two")).unwrap();
    let err = load(ImageFolder::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::EmptyClass { .. }), "{err}");
    message_names(&err, &["two", "empty class folder"]);

    // Images beside class folders.
    let dir = tempfile::tempdir().unwrap();
    grey_png(&dir.path().join("one/a.png"), 2, 2, 0);
    grey_png(&dir.path().join("stray.png"), 2, 2, 0);
    let err = load(ImageFolder::new(dir.path())).unwrap_err();
    message_names(&err, &["stray.png", "class"]);

    // A corrupt image.
    let dir = tempfile::tempdir().unwrap();
    grey_png(&dir.path().join("a.png"), 2, 2, 0);
    std::fs::write(dir.path().join("b.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    let err = load(ImageFolder::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::Image { .. }), "{err}");
    message_names(&err, &["b.png", "cannot decode"]);

    // No images at all.
    let dir = tempfile::tempdir().unwrap();
    let err = load(ImageFolder::new(dir.path())).unwrap_err();
    assert!(matches!(err, DataError::NoSamples { .. }), "{err}");
}

#[test]
fn the_memory_limit_is_checked_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..3 {
        grey_png(&dir.path().join(format!("{i}.png")), 10, 10, 0);
    }
    let mut options = opts();
    options.memory_limit = Some(299);
    let err = Dataset::load_images(&ImageFolder::new(dir.path()), &options).unwrap_err();
    assert!(
        matches!(err, DataError::OverMemoryBudget { bytes: 300, .. }),
        "{err}"
    );
    options.memory_limit = Some(300);
    assert_eq!(
        Dataset::load_images(&ImageFolder::new(dir.path()), &options)
            .unwrap()
            .len(),
        3
    );
}
