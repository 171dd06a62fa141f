//! Reports as people read them: the side-by-side table, the contraction and spectrum plots, and
//! tangents as images. Nothing here measures; everything takes finished figures.
use std::fmt::Write as _;
use std::path::Path;

use cae_core::ReconstructionLoss;
use image::GrayImage;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::{EvalReport, SIGNATURE_RANKS};
use crate::figures::{self, FigureError, Line, LineChart};

/// Singular values shown in [`render_table`] (the report keeps all `k`).
const TABLE_SINGULAR_VALUES: usize = 10;

/// A plain-text table with one column per model and one row per metric.
pub fn render_table(reports: &[(&str, &EvalReport)]) -> String {
    let mut rows: Vec<(String, Vec<String>)> = Vec::new();
    let mut row = |name: String, f: &dyn Fn(&EvalReport) -> Option<String>| {
        let cells = reports
            .iter()
            .map(|(_, r)| f(r).unwrap_or_else(|| "-".into()))
            .collect();
        rows.push((name, cells));
    };
    row("test samples".into(), &|r| Some(r.samples.to_string()));
    // One loss for every model names the rows; mixed, each cell says its own.
    let shared = reports
        .first()
        .map(|(_, r)| r.reconstruction.loss)
        .filter(|&loss| reports.iter().all(|(_, r)| r.reconstruction.loss == loss));
    let short = shared.map_or("reconstruction".to_string(), |loss| {
        loss.key().to_uppercase()
    });
    let unit = if shared == Some(ReconstructionLoss::Bce) {
        "pixel"
    } else {
        "value"
    };
    let value = move |r: &EvalReport, v: f64| match shared {
        Some(_) => format!("{v:.5}"),
        None => format!("{v:.5} ({})", r.reconstruction.loss.key().to_uppercase()),
    };
    row(format!("{short} per {unit}"), &|r| {
        Some(value(r, r.reconstruction.overall))
    });
    row("mean ‖J‖_F".into(), &|r| {
        Some(format!("{:.4}", r.mean_jacobian_frobenius))
    });
    row("saturated units".into(), &|r| {
        r.saturation.map(|s| format!("{:.2}%", 100.0 * s))
    });
    row("probe train acc".into(), &|r| {
        r.probe.map(|p| format!("{:.2}%", 100.0 * p.train_accuracy))
    });
    row("probe test acc".into(), &|r| {
        r.probe.map(|p| format!("{:.2}%", 100.0 * p.test_accuracy))
    });
    let mut radii: Vec<f64> = reports
        .iter()
        .flat_map(|(_, r)| r.contraction.iter().map(|p| p.0))
        .collect();
    radii.sort_by(f64::total_cmp);
    radii.dedup();
    for radius in radii {
        row(format!("contraction r={radius}"), &|r| {
            r.contraction
                .iter()
                .find(|p| p.0 == radius)
                .map(|p| format!("{:.4}", p.1))
        });
    }
    let k = reports
        .iter()
        .map(|(_, r)| r.spectrum.len())
        .max()
        .unwrap_or(0)
        .min(TABLE_SINGULAR_VALUES);
    for i in 0..k {
        row(format!("σ_{}", i + 1), &|r| {
            r.spectrum.get(i).map(|s| format!("{s:.4}"))
        });
    }
    for k in SIGNATURE_RANKS {
        row(format!("σ_{k}/σ_1"), &|r| {
            let signature = r.spectrum_signature.as_ref()?;
            let ratio = signature.ratios.iter().find(|(rank, _)| *rank == k)?;
            Some(format!("{:.4}", ratio.1))
        });
    }
    row("effective rank".into(), &|r| {
        r.spectrum_signature
            .as_ref()
            .map(|s| format!("{:.2}", s.effective_rank))
    });
    let mut labels: Vec<u8> = reports
        .iter()
        .flat_map(|(_, r)| r.reconstruction.per_class.iter().map(|c| c.0))
        .collect();
    labels.sort_unstable();
    labels.dedup();
    for label in labels {
        row(format!("{short} class {label}"), &|r| {
            r.reconstruction
                .per_class
                .iter()
                .find(|c| c.0 == label)
                .map(|c| format!("{:.5} (n={})", c.2, c.1))
        });
    }

    let width = |s: &str| s.chars().count();
    let first = rows
        .iter()
        .map(|(n, _)| width(n))
        .chain([width("metric")])
        .max()
        .unwrap_or(0);
    let cols: Vec<usize> = reports
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            rows.iter()
                .map(|(_, c)| width(&c[i]))
                .chain([width(name)])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(width(s))));
    let mut out = String::new();
    let mut line = |first_cell: &str, cells: Vec<&str>| {
        let mut l = pad(first_cell, first);
        for (c, w) in cells.into_iter().zip(&cols) {
            l.push_str("  ");
            l.push_str(&" ".repeat(w.saturating_sub(width(c))));
            l.push_str(c);
        }
        let _ = writeln!(out, "{}", l.trim_end());
    };
    line("metric", reports.iter().map(|(n, _)| *n).collect());
    for (name, cells) in &rows {
        line(name, cells.iter().map(String::as_str).collect());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Plots
// ---------------------------------------------------------------------------------------------

/// Matplotlib's tab10 palette, one colour per model.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// `[lo, hi]` of the finite positive values, widened by `factor` either side for a log axis.
fn log_range(values: impl Iterator<Item = f64>, factor: f64) -> Option<std::ops::Range<f64>> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    if !lo.is_finite() {
        return None;
    }
    let (lo, hi) = if lo == hi {
        (lo / 2.0, hi * 2.0)
    } else {
        (lo, hi)
    };
    Some(lo / factor..hi * factor)
}

fn linear_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let hi = values
        .filter(|v| v.is_finite())
        .fold(0f64, |hi, v| hi.max(v));
    0.0..if hi > 0.0 { hi * 1.08 } else { 1.0 }
}

/// Size of the contraction and spectrum plots in pixels.
pub const ANALYSIS_PLOT_SIZE: (u32, u32) = (900, 560);

/// One line per named model, coloured from [`PALETTE`], with [`ANALYSIS_PLOT_SIZE`]'s chart.
fn plot_models<XR, YR>(
    series: Vec<(&str, Vec<(f64, f64)>)>,
    (x_range, x_desc): (XR, &str),
    (y_range, y_desc): (YR, &str),
    path: &Path,
    title: &str,
) -> Result<(), FigureError>
where
    XR: AsRangedCoord<Value = f64>,
    XR::CoordDescType: ValueFormatter<f64>,
    YR: AsRangedCoord<Value = f64>,
    YR::CoordDescType: ValueFormatter<f64>,
{
    let lines: Vec<Line<'_, f64, f64>> = series
        .into_iter()
        .enumerate()
        .map(|(i, (label, points))| Line {
            label,
            color: PALETTE[i % PALETTE.len()],
            points,
        })
        .collect();
    let chart = LineChart {
        size: ANALYSIS_PLOT_SIZE,
        title,
        x_desc,
        y_desc,
        point_size: 3,
        x_labels: None,
        x_format: None,
        y_format: None,
    };
    figures::draw_line_chart(&chart, x_range, y_range, &lines, path)
}

fn nothing_to_plot(path: &Path, what: &str) -> FigureError {
    FigureError::Draw {
        path: path.to_path_buf(),
        message: format!("no positive finite {what} to plot"),
    }
}

/// The contraction ratio against the radius (log x axis), one line per named model, as a PNG of
/// [`ANALYSIS_PLOT_SIZE`]. Non-finite or non-positive radii are left out.
pub fn plot_contraction_curves(
    curves: &[(&str, &[(f64, f64)])],
    path: &Path,
    title: &str,
) -> Result<(), FigureError> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = curves
        .iter()
        .map(|(name, points)| {
            let points = points
                .iter()
                .copied()
                .filter(|(r, y)| r.is_finite() && *r > 0.0 && y.is_finite())
                .collect();
            (*name, points)
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.1.iter().copied());
    let x = log_range(all().map(|p| p.0), 1.2).ok_or_else(|| nothing_to_plot(path, "radii"))?;
    let y = linear_range(all().map(|p| p.1));
    plot_models(
        series,
        (x.log_scale(), "radius r of the input perturbation"),
        (y, "mean ‖f(x) − f(x + r·u)‖ / r"),
        path,
        title,
    )
}

/// Mean singular values of the encoder Jacobian against their rank (log y axis), one line per
/// named model, as a PNG of [`ANALYSIS_PLOT_SIZE`]. Zero singular values are left out.
pub fn plot_spectra(
    spectra: &[(&str, &[f64])],
    path: &Path,
    title: &str,
) -> Result<(), FigureError> {
    let series: Vec<(&str, Vec<(f64, f64)>)> = spectra
        .iter()
        .map(|(name, values)| {
            let points = values
                .iter()
                .enumerate()
                .map(|(i, &s)| ((i + 1) as f64, s))
                .filter(|(_, s)| s.is_finite() && *s > 0.0)
                .collect();
            (*name, points)
        })
        .collect();
    let all = || series.iter().flat_map(|s| s.1.iter().copied());
    let y = log_range(all().map(|p| p.1), 1.3)
        .ok_or_else(|| nothing_to_plot(path, "singular values"))?;
    let k = all().map(|p| p.0).fold(1f64, f64::max);
    plot_models(
        series,
        (0.5..k + 0.5, "rank i"),
        (y.log_scale(), "mean i-th singular value of J(x)"),
        path,
        title,
    )
}

/// Test digits in the tangents picture when none is chosen: 5, one per class (0–4), enough rows to
/// compare models at a glance.
pub const DEFAULT_TANGENT_DIGITS: usize = 5;
/// Leading tangents drawn per digit when none is chosen: 8, past the few large singular values a
/// CAE's spectrum should show.
pub const DEFAULT_TANGENTS_PER_DIGIT: usize = 8;

/// Maps a tangent to [0, 1] for display: `0.5 + 0.5·v / max|v|`, so 0.5 (grey) is zero, white the
/// most positive entry, black its negation.
pub fn tangent_to_image(v: &[f32]) -> Vec<f32> {
    let peak = v.iter().fold(0f32, |m, a| m.max(a.abs()));
    let peak = if peak > 0.0 { peak } else { 1.0 };
    v.iter().map(|a| 0.5 + 0.5 * a / peak).collect()
}

/// A grid of tangents: figure row `r` shows `rows[r]` (e.g. one input's [`leading_tangents`]),
/// each rescaled by [`tangent_to_image`], as `width × height` images enlarged `scale` times.
///
/// # Panics
/// Like [`figures::image_grid`], if a tangent's length is not `width * height` or a size is zero.
pub fn tangent_grid(rows: &[Vec<Vec<f32>>], width: usize, height: usize, scale: u32) -> GrayImage {
    let flat: Vec<Vec<f32>> = rows
        .iter()
        .map(|row| row.iter().flat_map(|v| tangent_to_image(v)).collect())
        .collect();
    let refs: Vec<&[f32]> = flat.iter().map(Vec::as_slice).collect();
    figures::image_grid(&refs, width, height, scale)
}

/// [`tangent_grid`] written as a PNG to `path`.
pub fn save_tangent_grid(
    rows: &[Vec<Vec<f32>>],
    width: usize,
    height: usize,
    scale: u32,
    path: &Path,
) -> Result<(), FigureError> {
    figures::save_png(&tangent_grid(rows, width, height, scale), path)
}
