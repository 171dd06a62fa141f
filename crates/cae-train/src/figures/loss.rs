//! The loss figure of a training run: train total, train and test reconstruction loss (BCE or
//! MSE) against the epoch.
use std::path::Path;

use plotters::style::RGBColor;

use super::{draw_line_chart, FigureError, Line, LineChart};
use crate::artifacts::EpochMetrics;
use cae_core::ReconstructionLoss;

/// Size of the loss plot in pixels.
pub const LOSS_PLOT_SIZE: (u32, u32) = (900, 560);

/// One line of the loss plot; `{loss}` in its label stands for the loss's name.
struct LossCurve {
    label: &'static str,
    color: RGBColor,
    value: fn(&EpochMetrics) -> f64,
}

/// Matplotlib's default blue, orange and green, familiar from the original figures.
const LOSS_CURVES: [LossCurve; 3] = [
    LossCurve {
        label: "train total ({loss} + penalty)",
        color: RGBColor(31, 119, 180),
        value: |m| m.train_total,
    },
    LossCurve {
        label: "train {loss}",
        color: RGBColor(255, 127, 14),
        value: |m| m.train_reconstruction,
    },
    LossCurve {
        label: "test {loss}",
        color: RGBColor(44, 160, 44),
        value: |m| m.test_reconstruction,
    },
];

/// Draws train total, train and test reconstruction loss (`loss`, BCE or MSE) against epoch and
/// writes a PNG of [`LOSS_PLOT_SIZE`] to `path`.
///
/// Non-finite values (a diverged epoch) are left out of the curves rather
/// than wrecking the y range.
pub fn plot_losses(
    log: &[EpochMetrics],
    loss: ReconstructionLoss,
    path: &Path,
    title: &str,
) -> Result<(), FigureError> {
    let name = loss.key().to_uppercase();
    let labels: Vec<String> = LOSS_CURVES
        .iter()
        .map(|curve| curve.label.replace("{loss}", &name))
        .collect();
    if log.is_empty() {
        return Err(FigureError::NoEpochs {
            path: path.to_path_buf(),
        });
    }
    let points: Vec<Vec<(i64, f64)>> = LOSS_CURVES
        .iter()
        .map(|curve| {
            log.iter()
                .map(|m| (m.epoch as i64, (curve.value)(m)))
                .filter(|(_, y)| y.is_finite())
                .collect()
        })
        .collect();

    let x_range = epoch_axis_range(log);
    let y_range = loss_axis_range(points.iter().flatten().map(|&(_, y)| y));
    let y_decimals = loss_label_decimals(&y_range);
    let lines: Vec<Line<'_, i64, f64>> = LOSS_CURVES
        .iter()
        .zip(points)
        .zip(&labels)
        .map(|((curve, points), label)| Line {
            label,
            color: curve.color,
            points,
        })
        .collect();
    let chart = LineChart {
        size: LOSS_PLOT_SIZE,
        title,
        x_desc: "epoch",
        y_desc: &format!("loss ({name} per value)"),
        // Point markers keep a single epoch (one point, no line) visible.
        point_size: if log.len() <= 30 { 3 } else { 0 },
        // Integer epochs only: plotters may pick fewer labels than epochs.
        x_labels: Some(log.len().clamp(2, 12)),
        x_format: Some(&|x: &i64| x.to_string()),
        y_format: Some(&|y: &f64| format!("{y:.y_decimals$}")),
    };
    draw_line_chart(&chart, x_range, y_range, &lines, path)
}

/// Epoch axis: exactly the logged epochs, widened around a single epoch so
/// that plotters has a non-empty range to draw.
fn epoch_axis_range(log: &[EpochMetrics]) -> std::ops::Range<i64> {
    let first = log.iter().map(|m| m.epoch).min().unwrap_or(1) as i64;
    let last = log.iter().map(|m| m.epoch).max().unwrap_or(1) as i64;
    if first == last {
        first - 1..last + 1
    } else {
        first..last
    }
}

/// Loss axis: the data range plus 5% headroom either side (never below zero,
/// BCE can't be negative), widened when all values are equal.
fn loss_axis_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), y| {
        (lo.min(y), hi.max(y))
    });
    if !min.is_finite() || !max.is_finite() {
        return 0.0..1.0;
    }
    let span = max - min;
    let pad = if span > 0.0 {
        span * 0.05
    } else {
        (max.abs() * 0.1).max(1e-3)
    };
    let lower = if min >= 0.0 {
        (min - pad).max(0.0)
    } else {
        min - pad
    };
    lower..max + pad
}

/// Decimal places for y labels: enough to tell apart labels about a tenth of
/// the axis apart, so 0.30 / 0.25 on a coarse axis and 0.3100 / 0.3080 on a
/// fine one.
fn loss_label_decimals(range: &std::ops::Range<f64>) -> usize {
    let step = (range.end - range.start) / 10.0;
    if step > 0.0 && step.is_finite() {
        (-step.log10()).ceil().clamp(1.0, 8.0) as usize
    } else {
        3
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::figures::test_support::assert_png_of_size_with_content;

    fn metrics(epoch: usize) -> EpochMetrics {
        let e = epoch as f64;
        EpochMetrics {
            epoch,
            train_reconstruction: 0.1 + 0.2 / e,
            train_penalty: 0.01,
            train_total: 0.11 + 0.2 / e,
            test_reconstruction: 0.105 + 0.19 / e,
            test_penalty: 0.01,
            mean_jacobian_frobenius: 3.0,
            seconds: 10.0,
            samples_per_second: 6000.0,
            learning_rate: 1e-3,
        }
    }

    #[test]
    fn loss_plot_writes_decodable_png_with_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let log: Vec<EpochMetrics> = (1..=20).map(metrics).collect();
        plot_losses(
            &log,
            ReconstructionLoss::Bce,
            &path,
            "CAE on MNIST, lambda = 0.1",
        )
        .unwrap();
        assert_png_of_size_with_content(&path, LOSS_PLOT_SIZE);
        // Curves are drawn in colour; axes, text and background are grey-scale.
        let img = image::open(&path).unwrap().to_rgb8();
        let coloured = img
            .pixels()
            .filter(|p| p[0].abs_diff(p[1]) > 60 || p[1].abs_diff(p[2]) > 60)
            .count();
        assert!(coloured > 500, "only {coloured} coloured pixels");
    }

    #[test]
    fn loss_plot_works_with_a_single_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        plot_losses(&[metrics(1)], ReconstructionLoss::Mse, &path, "one epoch").unwrap();
        assert_png_of_size_with_content(&path, LOSS_PLOT_SIZE);
    }

    #[test]
    fn loss_plot_skips_non_finite_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let mut log: Vec<EpochMetrics> = (1..=3).map(metrics).collect();
        log[2].train_total = f64::NAN;
        log[2].test_reconstruction = f64::INFINITY;
        plot_losses(&log, ReconstructionLoss::Bce, &path, "diverged").unwrap();
        assert_png_of_size_with_content(&path, LOSS_PLOT_SIZE);
    }

    #[test]
    fn loss_plot_of_empty_log_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("loss.png");
        let err = plot_losses(&[], ReconstructionLoss::Bce, &path, "nothing").unwrap_err();
        assert!(matches!(err, FigureError::NoEpochs { .. }));
        assert!(!path.exists());
    }

    #[test]
    fn loss_axis_range_pads_and_stays_non_negative() {
        let r = loss_axis_range([0.1, 0.3].into_iter());
        assert!((r.start - 0.09).abs() < 1e-12 && (r.end - 0.31).abs() < 1e-12);
        let flat = loss_axis_range([0.2, 0.2].into_iter());
        assert!(flat.start < 0.2 && flat.end > 0.2);
        assert_eq!(loss_axis_range([0.0, 0.001].into_iter()).start, 0.0);
        assert_eq!(loss_axis_range(std::iter::empty()), 0.0..1.0);
    }

    #[test]
    fn loss_label_decimals_follow_axis_span() {
        assert_eq!(loss_label_decimals(&(0.09..0.31)), 2);
        assert_eq!(loss_label_decimals(&(0.294..0.3108)), 3);
        assert_eq!(loss_label_decimals(&(0.0..50.0)), 1);
        assert_eq!(loss_label_decimals(&(0.2..0.2)), 3);
    }
}
