//! The run's SVG plot: rates (offered, sent, accepted, included per second) above, latency from the intended
//! send time (submit and inclusion p50/p99) below, each with its legend in a column of its own to the right,
//! so that no legend covers the data.
//!
//! A latency line is drawn only through the seconds that measured something: on a chain whose blocks come
//! every few seconds most seconds include nothing, and a second with no inclusion has no inclusion latency.
//! Drawing those seconds as 0 ms made the inclusion lines dive to zero between blocks; they are gaps instead
//! (a lone measured second is a dot).

use crate::recorder::Point;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Size of the whole picture, in pixels.
const SIZE: (u32, u32) = (1000, 700);
/// Width of the legend column right of each chart.
const LEGEND_WIDTH: u32 = 170;

/// One line of a chart: its legend name, colour, value, and whether a point has a value at all.
struct Line {
    name: &'static str,
    color: RGBColor,
    value: fn(&Point) -> f64,
    present: fn(&Point) -> bool,
}

fn always(_: &Point) -> bool {
    true
}

const RATES: [Line; 4] = [
    Line { name: "offered", color: BLACK, value: |p| p.offered, present: always },
    Line { name: "sent", color: BLUE, value: |p| p.sent, present: always },
    Line { name: "accepted", color: GREEN, value: |p| p.accepted, present: always },
    Line { name: "included", color: MAGENTA, value: |p| p.included, present: always },
];

const LATENCIES: [Line; 4] = [
    Line { name: "submit p50", color: CYAN, value: |p| p.submit_p50, present: |p| p.submit_samples > 0 },
    Line { name: "submit p99", color: BLUE, value: |p| p.submit_p99, present: |p| p.submit_samples > 0 },
    Line { name: "inclusion p50", color: RED, value: |p| p.inclusion_p50, present: |p| p.inclusion_samples > 0 },
    Line { name: "inclusion p99", color: MAGENTA, value: |p| p.inclusion_p99, present: |p| p.inclusion_samples > 0 },
];

/// Draws `points` into an SVG file at `path`.
pub fn plot(path: &std::path::Path, points: &[Point]) -> Result<(), String> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let t_max = points.iter().map(|p| p.t).fold(1.0, f64::max);
    panel(&top, "actions per second", points, t_max, &RATES)?;
    panel(&bottom, "latency from intended send time (ms)", points, t_max, &LATENCIES)?;
    root.present().map_err(|e| e.to_string())
}

/// One chart with its legend column.
fn panel(
    area: &DrawingArea<SVGBackend<'_>, Shift>,
    caption: &str,
    points: &[Point],
    t_max: f64,
    lines: &[Line],
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let (chart_area, legend) = area.split_horizontally(SIZE.0 - LEGEND_WIDTH);
    // Only measured values set the scale: an unmeasured second's 0 is not data.
    let y_max =
        lines.iter().flat_map(|l| points.iter().filter(|p| (l.present)(p)).map(|p| (l.value)(p))).fold(1.0, f64::max)
            * 1.1;
    let mut c = ChartBuilder::on(&chart_area)
        .caption(caption, ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(err)?;
    c.configure_mesh().x_desc("seconds").draw().map_err(err)?;
    for l in lines {
        for run in segments(points, l.present) {
            let xy: Vec<(f64, f64)> = run.iter().map(|p| (p.t, (l.value)(p))).collect();
            if let [only] = xy[..] {
                c.draw_series(std::iter::once(Circle::new(only, 2, l.color.filled()))).map_err(err)?;
            } else {
                c.draw_series(LineSeries::new(xy, l.color)).map_err(err)?;
            }
        }
    }
    for (i, l) in lines.iter().enumerate() {
        let y = 50 + 24 * i as i32;
        legend.draw(&PathElement::new(vec![(8, y), (34, y)], l.color.stroke_width(2))).map_err(err)?;
        legend.draw(&Text::new(l.name, (42, y - 8), ("sans-serif", 15))).map_err(err)?;
    }
    Ok(())
}

/// The runs of consecutive points that have a value (`present`): a line goes through each run and never
/// across the points between two runs.
fn segments(points: &[Point], present: fn(&Point) -> bool) -> Vec<&[Point]> {
    points.split(|p| !present(p)).filter(|run| !run.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A second on a chain with a block every third second: submits every second, inclusions on blocks.
    fn second(t: u64) -> Point {
        let block = t.is_multiple_of(3);
        Point {
            t: t as f64,
            offered: 10.0,
            sent: 10.0,
            accepted: 10.0,
            included: if block { 30.0 } else { 0.0 },
            submit_p50: 5.0,
            submit_p99: 9.0,
            inclusion_p50: if block { 2000.0 } else { 0.0 },
            inclusion_p99: if block { 2900.0 } else { 0.0 },
            submit_samples: 10,
            inclusion_samples: if block { 30 } else { 0 },
        }
    }

    #[test]
    fn seconds_without_a_measurement_split_a_line_and_never_join_it() {
        let points: Vec<Point> = (1..=10).map(second).collect();
        let inclusion = segments(&points, LATENCIES[2].present);
        let times: Vec<Vec<f64>> = inclusion.iter().map(|run| run.iter().map(|p| p.t).collect()).collect();
        assert_eq!(times, vec![vec![3.0], vec![6.0], vec![9.0]]);
        assert_eq!(segments(&points, LATENCIES[0].present).len(), 1, "submits measured every second: one line");
        assert_eq!(segments(&points, RATES[3].present).len(), 1, "a rate of 0 is a measurement");
        assert!(segments(&[], always).is_empty());
    }

    #[test]
    fn the_plot_has_no_zero_ms_inclusion_point_and_its_legend_is_right_of_the_charts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.svg");
        let points: Vec<Point> = (1..=12).map(second).collect();
        plot(&path, &points).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        // Each measured inclusion second is a lone dot here (blocks are 3 s apart), so there is no inclusion
        // polyline at all: before, the unmeasured seconds joined them through 0 ms.
        let red = format!("#{:02X}{:02X}{:02X}", RED.0, RED.1, RED.2);
        let polylines_in_red = svg.lines().filter(|l| l.contains("<polyline") && l.contains(&red)).count();
        let legend_red = 1;
        assert_eq!(polylines_in_red, legend_red, "inclusion p50 drawn as a line through unmeasured seconds");
        assert!(svg.matches("<circle").count() >= 8, "the 4 blocks' inclusion p50 and p99 are dots");
        for name in ["offered", "submit p99", "inclusion p99"] {
            // plotters writes a text element's content on a line of its own.
            let at =
                svg.find(&format!("\n{name}\n</text>")).unwrap_or_else(|| panic!("{name} missing from the legend"));
            let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
            let x: f64 = tag.split("x=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().parse().unwrap();
            assert!(x >= f64::from(SIZE.0 - LEGEND_WIDTH), "{name}'s legend at x={x}, over the chart");
        }
    }
}
