//! A picture of one cycle as a self-contained SVG: transactions on a circle, each edge an arrow
//! labelled with its kind, key and value. Drawn by faultline; no graphviz needed.

use super::report::Anomaly;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the cycle of `anomaly` (of type `kind`) as SVG text.
pub fn cycle_svg(kind: &str, anomaly: &Anomaly) -> String {
    let n = anomaly.cycle.len().max(1);
    let r = 60.0 + 30.0 * n as f64;
    let (cx, cy) = (r + 140.0, r + 70.0);
    let (w, h) = (2.0 * cx, 2.0 * cy + 20.0 * n as f64 + 20.0);
    let pos = |i: usize| {
        let a = -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64;
        (cx + r * a.cos(), cy + r * a.sin())
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w:.0}" height="{h:.0}" viewBox="0 0 {w:.0} {h:.0}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        s,
        r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="20" font-size="15" font-weight="bold">{}</text>"#,
        esc(&format!("{kind}: {}", anomaly.explanation))
    );
    for (i, e) in anomaly.cycle.iter().enumerate() {
        let (x1, y1) = pos(i);
        let (x2, y2) = pos((i + 1) % n);
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        let rad = 28.0;
        let (sx, sy, ex, ey) = (x1 + ux * rad, y1 + uy * rad, x2 - ux * rad, y2 - uy * rad);
        // Bend outward a little so opposite edges between two nodes do not overlap.
        let (mx, my) = ((sx + ex) / 2.0 - uy * 25.0, (sy + ey) / 2.0 + ux * 25.0);
        let color = match e.kind {
            "ww" => "#1f77b4",
            "wr" => "#2ca02c",
            "rw" => "#d62728",
            _ => "#7f7f7f",
        };
        let label = match (&e.key, e.value) {
            (Some(k), Some(v)) => format!("{} {k} {v}", e.kind),
            _ => e.kind.to_string(),
        };
        let _ = writeln!(
            s,
            r#"<path d="M {sx:.1} {sy:.1} Q {mx:.1} {my:.1} {ex:.1} {ey:.1}" fill="none" stroke="{color}" stroke-width="2" marker-end="url(#arrow)"><title>{}</title></path>"#,
            esc(&e.why)
        );
        let _ = writeln!(
            s,
            r#"<text x="{mx:.1}" y="{my:.1}" fill="{color}" text-anchor="middle">{}</text>"#,
            esc(&label)
        );
        let _ = writeln!(
            s,
            r#"<text x="10" y="{:.0}" font-size="12">{}</text>"#,
            2.0 * cy + 20.0 * i as f64 + 10.0,
            esc(&format!("{} -{}-> {}: {}", e.from, e.kind, e.to, e.why))
        );
    }
    for (i, e) in anomaly.cycle.iter().enumerate() {
        let (x, y) = pos(i);
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="26" fill="#f5f5f5" stroke="#333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">{}</text>"##,
            y + 5.0,
            esc(&e.from)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::report::EdgeReport;

    #[test]
    fn draws_every_edge_and_node() {
        let edge = |a: &str, b: &str, kind: &'static str| EdgeReport {
            from: a.into(),
            to: b.into(),
            kind,
            key: Some("x".into()),
            value: Some(1),
            why: format!("{a} <{kind}> {b}"),
        };
        let a = Anomaly {
            txns: Vec::new(),
            cycle: vec![edge("T1", "T2", "wr"), edge("T2", "T1", "rw")],
            explanation: "G-single cycle".into(),
        };
        let svg = cycle_svg("G-single", &a);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>\n"));
        assert_eq!(svg.matches("<circle").count(), 2);
        assert_eq!(svg.matches("marker-end").count(), 2);
        assert!(svg.contains("T1 &lt;wr&gt; T2"));
    }
}
