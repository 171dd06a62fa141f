//! The one line chart every plot is drawn with: white background, a title, a light mesh with axis
//! descriptions, one coloured line per series with point markers, and a legend at the upper right;
//! rendered in memory and written as a PNG.
use std::path::Path;

use image::RgbImage;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;

use super::{encode_png, ensure_font_registered, write_png_bytes, FigureError, FONT_FAMILY};

/// One series of a [`LineChart`].
pub(crate) struct Line<'a, X, Y> {
    /// The legend's text.
    pub label: &'a str,
    /// Colour of the line, its markers and its legend entry.
    pub color: RGBColor,
    /// The points, in drawing order.
    pub points: Vec<(X, Y)>,
}

/// How a chart looks, apart from its ranges and data.
pub(crate) struct LineChart<'a, X, Y> {
    /// Image size in pixels.
    pub size: (u32, u32),
    /// The caption above the chart.
    pub title: &'a str,
    /// Description of the x axis.
    pub x_desc: &'a str,
    /// Description of the y axis.
    pub y_desc: &'a str,
    /// Radius of the point markers (0: none).
    pub point_size: u32,
    /// How many x labels to aim for (plotters' default when `None`).
    pub x_labels: Option<usize>,
    /// How x labels are written (the coordinate's default when `None`).
    pub x_format: Option<&'a dyn Fn(&X) -> String>,
    /// How y labels are written (the coordinate's default when `None`).
    pub y_format: Option<&'a dyn Fn(&Y) -> String>,
}

/// Draws `lines` over `x_range` × `y_range` as `chart` says and writes the PNG to `path`.
pub(crate) fn draw_line_chart<XR, YR>(
    chart: &LineChart<'_, XR::Value, YR::Value>,
    x_range: XR,
    y_range: YR,
    lines: &[Line<'_, XR::Value, YR::Value>],
    path: &Path,
) -> Result<(), FigureError>
where
    XR: AsRangedCoord,
    XR::CoordDescType: ValueFormatter<XR::Value>,
    XR::Value: Clone + 'static,
    YR: AsRangedCoord,
    YR::CoordDescType: ValueFormatter<YR::Value>,
    YR::Value: Clone + 'static,
{
    ensure_font_registered()?;
    let (width, height) = chart.size;
    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    {
        let draw_error = |e: &dyn std::fmt::Display| FigureError::Draw {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw_error(&e))?;
        let mut context = ChartBuilder::on(&root)
            .caption(chart.title, (FONT_FAMILY, 26))
            .margin(16)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(x_range, y_range)
            .map_err(|e| draw_error(&e))?;
        let mut mesh = context.configure_mesh();
        mesh.x_desc(chart.x_desc)
            .y_desc(chart.y_desc)
            .label_style((FONT_FAMILY, 16))
            .axis_desc_style((FONT_FAMILY, 18))
            .light_line_style(RGBColor(235, 235, 235));
        if let Some(n) = chart.x_labels {
            mesh.x_labels(n);
        }
        if let Some(format) = chart.x_format {
            mesh.x_label_formatter(format);
        }
        if let Some(format) = chart.y_format {
            mesh.y_label_formatter(format);
        }
        mesh.draw().map_err(|e| draw_error(&e))?;
        for line in lines {
            let color = line.color;
            context
                .draw_series(
                    LineSeries::new(line.points.iter().cloned(), color.stroke_width(2))
                        .point_size(chart.point_size),
                )
                .map_err(|e| draw_error(&e))?
                .label(line.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
                });
        }
        context
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FONT_FAMILY, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(|e| draw_error(&e))?;
        root.present().map_err(|e| draw_error(&e))?;
    }
    // invariant: `rgb` holds width × height × 3 bytes, the size `from_raw` checks.
    let image = RgbImage::from_raw(width, height, rgb).expect("buffer sized from the plot size");
    write_png_bytes(encode_png(&image, path)?, path)
}
