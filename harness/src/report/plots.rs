//! latency.svg and rate.svg, drawn with plotters' SVG backend: ops coloured by outcome (ok
//! green, fail red, info orange), fault intervals shaded by kind.

use super::data::{FaultInterval, RunData};
use checkers::history::EventKind;
use plotters::prelude::*;

const W: u32 = 1000;
const H: u32 = 420;

fn fault_color(kind: &str) -> RGBColor {
    match kind {
        "partition" => RGBColor(120, 120, 220),
        "kill" => RGBColor(220, 90, 90),
        "pause" => RGBColor(200, 160, 60),
        "clock" => RGBColor(90, 180, 180),
        _ => RGBColor(160, 110, 200),
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

/// Latency of each (sampled) op over time, log scale.
pub fn latency(d: &RunData) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let xmax = d.duration.max(1.0);
        let ymax = d.points.iter().map(|p| p.latency_ms).fold(1.0, f64::max) * 1.5;
        let ymin = 0.05;
        let mut chart = ChartBuilder::on(&root)
            .caption("latency by op outcome (shaded: faults)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..xmax, (ymin..ymax).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (ms)")
            .draw()
            .map_err(err)?;
        shade(&mut chart, &d.faults, ymin, ymax)?;
        for (kind, name) in [
            (EventKind::Ok, "ok"),
            (EventKind::Fail, "fail"),
            (EventKind::Info, "info"),
        ] {
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

/// Completions per second by outcome.
pub fn rate(d: &RunData) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
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
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "throughput by op outcome (shaded: faults)",
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..xmax, 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("ops per second")
            .draw()
            .map_err(err)?;
        shade(&mut chart, &d.faults, 0.0, ymax)?;
        for (slot, kind, name) in [
            (0, EventKind::Ok, "ok"),
            (1, EventKind::Fail, "fail"),
            (2, EventKind::Info, "info"),
        ] {
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
