//! latency.svg and rate.svg, drawn with plotters' SVG backend: ops coloured by outcome (ok
//! green, fail red, info orange), fault intervals shaded by kind.

use super::data::{FaultInterval, RunData};
use checkers::history::EventKind;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

const W: u32 = 1000;
const H: u32 = 420;

/// The colour of a fault kind's intervals (each kind brings its own; grey for a kind this
/// faultline does not know, from another version's history).
fn fault_color(kind: &str) -> RGBColor {
    match nemesis::Kind::from_name(kind) {
        Some(k) => {
            let [r, g, b] = k.color();
            RGBColor(r, g, b)
        }
        None => RGBColor(150, 150, 150),
    }
}

fn outcome_color(kind: EventKind) -> RGBColor {
    match kind {
        EventKind::Ok => RGBColor(40, 150, 60),
        EventKind::Fail => RGBColor(210, 50, 50),
        _ => RGBColor(240, 150, 20),
    }
}

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing: {e}")
}

fn shade<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, impl CoordTranslate<From = (f64, f64)>>,
    faults: &[FaultInterval],
    y0: f64,
    y1: f64,
) -> anyhow::Result<()> {
    for f in faults {
        let c = fault_color(&f.kind);
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(f.start, y0), (f.end.max(f.start), y1)],
                c.mix(0.18).filled(),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// Draws one plot of W x H as SVG: the title, time (s) on x from 0 to `xmax`, `y` described
/// by `y_desc` and spanning `y0..y1` (for the shading), the faults shaded, the series that
/// `series` draws, and their legend.
fn plot<Y>(
    title: &str,
    y_desc: &str,
    xmax: f64,
    y: Y,
    (y0, y1): (f64, f64),
    faults: &[FaultInterval],
    series: impl FnOnce(
        &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, Y::CoordDescType>>,
    ) -> anyhow::Result<()>,
) -> anyhow::Result<String>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..xmax, y)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        shade(&mut chart, faults, y0, y1)?;
        series(&mut chart)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The outcomes plotted, with their names.
const OUTCOMES: [(EventKind, &str); 3] = [
    (EventKind::Ok, "ok"),
    (EventKind::Fail, "fail"),
    (EventKind::Info, "info"),
];

/// Latency of each (sampled) op over time, log scale.
pub fn latency(d: &RunData) -> anyhow::Result<String> {
    let xmax = d.duration.max(1.0);
    let ymax = d.points.iter().map(|p| p.latency_ms).fold(1.0, f64::max) * 1.5;
    let ymin = 0.05;
    plot(
        "latency by op outcome (shaded: faults)",
        "latency (ms)",
        xmax,
        (ymin..ymax).log_scale(),
        (ymin, ymax),
        &d.faults,
        |chart| {
            for (kind, name) in OUTCOMES {
                let c = outcome_color(kind);
                chart
                    .draw_series(
                        d.points
                            .iter()
                            .filter(|p| p.kind == kind)
                            .map(|p| Circle::new((p.t, p.latency_ms.max(ymin)), 2, c.filled())),
                    )
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| Circle::new((x, y), 4, c.filled()));
            }
            Ok(())
        },
    )
}

/// Completions per second by outcome, with the stretches in which no op succeeded
/// (`unavailable`, from the run's test power) drawn as a dark red band along the time axis.
pub fn rate(d: &RunData, unavailable: &[crate::power::Window]) -> anyhow::Result<String> {
    let xmax = d.duration.max(1.0);
    let ymax = d
        .per_second
        .iter()
        .flat_map(|s| s.iter())
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.2;
    plot(
        "throughput by op outcome (shaded: faults)",
        "ops per second",
        xmax,
        0f64..ymax,
        (0.0, ymax),
        &d.faults,
        |chart| {
            for (slot, (kind, name)) in OUTCOMES.into_iter().enumerate() {
                let c = outcome_color(kind);
                chart
                    .draw_series(LineSeries::new(
                        d.per_second
                            .iter()
                            .enumerate()
                            .map(|(s, v)| (s as f64 + 0.5, f64::from(v[slot]))),
                        c.stroke_width(2),
                    ))
                    .map_err(err)?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                    });
            }
            if !unavailable.is_empty() {
                let band = RGBColor(120, 0, 0);
                chart
                    .draw_series(unavailable.iter().map(|w| {
                        Rectangle::new([(w.start, 0.0), (w.end, ymax * 0.04)], band.filled())
                    }))
                    .map_err(err)?
                    .label("no ok op")
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 3), (x + 16, y + 3)], band.filled())
                    });
            }
            Ok(())
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind this faultline knows, the disk faults included, has its own colour; only
    /// an unknown kind is grey.
    #[test]
    fn every_known_kind_has_its_own_colour() {
        let grey = fault_color("flood");
        let mut seen = Vec::new();
        for k in nemesis::Kind::ALL {
            let c = fault_color(k.name());
            assert!(c != grey, "{k} is drawn grey");
            assert!(!seen.contains(&c), "{k} shares a colour");
            seen.push(c);
        }
        assert!(seen.contains(&fault_color("disk-slow")));
    }
}
