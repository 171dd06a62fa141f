//! A folder of PNG/JPEG images, read as torchvision's `ImageFolder` and Keras's
//! `image_dataset_from_directory` read one: either images directly in the folder (unlabelled),
//! or one subdirectory per class (labels from the sorted subdirectory names, names kept).
//! Images become grey or colour bytes of one size, decoded in parallel within decode limits.

use std::path::{Path, PathBuf};

use image::imageops::FilterType;
use image::{DynamicImage, ImageReader};
use rayon::prelude::*;

use crate::dataset::Dataset;
use crate::error::DataError;
use crate::memory::Budget;
use crate::shape::SampleShape;
use crate::storage::Storage;

/// A folder of images to read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ImageFolder {
    /// The folder: images, or one subdirectory of images per class.
    pub dir: PathBuf,
    /// 1 (grey) or 3 (colour); `None`: as the first image is.
    pub channels: Option<usize>,
    /// `(height, width)` every image is resized to; `None`: the first image's size, which every
    /// image must then have.
    pub size: Option<(usize, usize)>,
}

impl ImageFolder {
    /// The folder at `dir`, channels and size from its first image.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            channels: None,
            size: None,
        }
    }
}

/// Largest image side decoded, and most memory one decode may take: far beyond any image a
/// dataset holds, small enough that a decompression bomb fails on its header.
const MAX_SIDE: u32 = 16_384;
const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Whether `path` is named like a PNG or JPEG file.
pub(crate) fn is_image_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

/// Whether `dir` holds a PNG/JPEG image, directly or in a (non-hidden) subdirectory.
pub(crate) fn holds_images(dir: &Path) -> bool {
    match entries(dir) {
        Ok((subdirs, images)) => !images.is_empty() || subdirs.iter().any(|d| holds_images(d)),
        Err(_) => false,
    }
}

/// The images of a folder, in order, with their class ids, and the class names.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    pub(crate) files: Vec<(PathBuf, u8)>,
    pub(crate) classes: Option<Vec<String>>,
}

/// Lists `dir`: sorted class subdirectories (each searched recursively, none empty), or sorted
/// images directly in it. Hidden entries and files that are not images are passed over.
pub(crate) fn list(dir: &Path) -> Result<Listing, DataError> {
    let (subdirs, images) = entries(dir)?;
    if subdirs.is_empty() {
        return Ok(Listing {
            files: images.into_iter().map(|p| (p, 0)).collect(),
            classes: None,
        });
    }
    if let Some(image) = images.into_iter().next() {
        return Err(DataError::MixedLayout {
            dir: dir.to_path_buf(),
            image,
        });
    }
    if subdirs.len() > 256 {
        return Err(DataError::TooManyClasses {
            path: dir.to_path_buf(),
            count: subdirs.len(),
        });
    }
    let mut listing = Listing::default();
    let mut names = Vec::new();
    for (id, class_dir) in subdirs.iter().enumerate() {
        let mut files = Vec::new();
        images_under(class_dir, &mut files)?;
        if files.is_empty() {
            return Err(DataError::EmptyClass {
                dir: class_dir.clone(),
            });
        }
        listing
            .files
            .extend(files.into_iter().map(|f| (f, id as u8)));
        names.push(file_name(class_dir));
    }
    listing.classes = Some(names);
    Ok(listing)
}

/// Sorted subdirectories and image files of `dir`, hidden ones left out.
fn entries(dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DataError> {
    let io = |error| DataError::Io {
        path: dir.to_path_buf(),
        error,
    };
    let mut subdirs = Vec::new();
    let mut images = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if file_name(&path).starts_with('.') {
            continue;
        }
        if path.is_dir() {
            subdirs.push(path);
        } else if is_image_file(&path) {
            images.push(path);
        }
    }
    subdirs.sort();
    images.sort();
    Ok((subdirs, images))
}

fn images_under(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), DataError> {
    let (subdirs, images) = entries(dir)?;
    out.extend(images);
    for sub in subdirs {
        images_under(&sub, out)?;
    }
    Ok(())
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

/// Reads `folder` into a dataset of bytes, channels last.
pub(crate) fn load(folder: &ImageFolder, budget: Option<Budget>) -> Result<Dataset, DataError> {
    if let Some(c) = folder.channels.filter(|&c| !matches!(c, 1 | 3)) {
        return Err(DataError::InvalidRaw {
            what: "image channels (1 or 3)",
            expected: 1,
            found: c,
        });
    }
    if let Some((h, w)) = folder.size.filter(|&(h, w)| h == 0 || w == 0) {
        return Err(DataError::InvalidRaw {
            what: "image height × width (both must be positive)",
            expected: 1,
            found: h.min(w),
        });
    }
    let listing = list(&folder.dir)?;
    let Some((first_path, _)) = listing.files.first() else {
        return Err(DataError::NoSamples {
            path: folder.dir.clone(),
        });
    };
    let first = decode(first_path)?;
    let first_size = (first.width(), first.height());
    let channels = folder
        .channels
        .unwrap_or(if first.color().has_color() { 3 } else { 1 });
    let (height, width) = folder
        .size
        .unwrap_or((first_size.1 as usize, first_size.0 as usize));
    let shape = SampleShape::Image {
        height,
        width,
        channels,
    };
    let dim = shape.dim();
    let bytes = (listing.files.len() as u64).saturating_mul(dim as u64);
    Budget::check(budget, &folder.dir, bytes)?;

    let mut values = vec![0u8; listing.files.len() * dim];
    let first_error = values
        .par_chunks_mut(dim)
        .zip(listing.files.par_iter())
        .enumerate()
        .filter_map(|(i, (out, (path, _)))| {
            let image = decode(path).and_then(|image| {
                let size = (image.width(), image.height());
                if folder.size.is_none() && size != first_size {
                    return Err(DataError::MixedImageSizes {
                        first: first_path.clone(),
                        first_size,
                        other: path.clone(),
                        other_size: size,
                    });
                }
                Ok(image)
            });
            match image {
                Ok(image) => {
                    fill(out, image, channels, height, width);
                    None
                }
                Err(e) => Some((i, e)),
            }
        })
        .min_by_key(|(i, _)| *i);
    if let Some((_, error)) = first_error {
        return Err(error);
    }
    let labels = listing
        .classes
        .is_some()
        .then(|| listing.files.iter().map(|(_, id)| *id).collect());
    let data = Dataset::checked(Storage::U8(values), shape, labels, &folder.dir)?;
    match listing.classes {
        Some(names) => data.with_class_names(names),
        None => Ok(data),
    }
}

fn decode(path: &Path) -> Result<DynamicImage, DataError> {
    let bad = |detail: String| DataError::Image {
        path: path.to_path_buf(),
        detail,
    };
    let mut reader = ImageReader::open(path)
        .map_err(|error| DataError::Io {
            path: path.to_path_buf(),
            error,
        })?
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    reader.decode().map_err(|e| bad(e.to_string()))
}

/// Writes `image` into `out` as `channels` bytes per pixel at `height × width` (bilinear when
/// resized; grey by the luma weights of Rec. 709; alpha dropped).
fn fill(out: &mut [u8], image: DynamicImage, channels: usize, height: usize, width: usize) {
    let (w, h) = (width as u32, height as u32);
    let resized = |image: DynamicImage| {
        if (image.width(), image.height()) == (w, h) {
            image
        } else {
            image.resize_exact(w, h, FilterType::Triangle)
        }
    };
    if channels == 1 {
        out.copy_from_slice(resized(DynamicImage::ImageLuma8(image.to_luma8())).as_bytes());
    } else {
        out.copy_from_slice(resized(DynamicImage::ImageRgb8(image.to_rgb8())).as_bytes());
    }
}
