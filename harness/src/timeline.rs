//! `timeline.html`: a self-contained page drawing each process's ops as bars on a time axis,
//! one panel per failing key, with the counterexample's ops highlighted. Plain HTML and SVG,
//! no script and nothing fetched from the network.

use checkers::linear::{Report, Verdict};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One op drawn as a bar.
pub use checkers::check::TimelineOp as Bar;
/// How a bar is coloured.
pub use checkers::check::TimelineOutcome as Outcome;

/// Escapes text for HTML and XML (the five characters with a meaning there).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#8fb3d9",
        Outcome::Unknown => "#f0c070",
        Outcome::InPrefix => "#7cc47c",
        Outcome::Failed => "#e0524d",
    }
}

const LANE: u64 = 22;
const WIDTH: f64 = 1400.0;
const LEFT: f64 = 90.0;

fn panel(out: &mut String, title: &str, bars: &[&Bar]) {
    let lo = bars.iter().map(|b| b.start).min().unwrap_or(0);
    let hi = bars
        .iter()
        .map(|b| b.end.unwrap_or(b.start))
        .max()
        .unwrap_or(lo)
        .max(lo + 1)
        + 1;
    let lanes: BTreeMap<u64, usize> = {
        let mut ps: Vec<u64> = bars.iter().map(|b| b.process).collect();
        ps.sort_unstable();
        ps.dedup();
        ps.into_iter().enumerate().map(|(i, p)| (p, i)).collect()
    };
    let height = lanes.len() as u64 * LANE + 30;
    let x = |pos: u64| {
        LEFT + (pos.saturating_sub(lo)) as f64 / (hi - lo) as f64 * (WIDTH - LEFT - 10.0)
    };
    let _ = write!(out, "<h2>{}</h2>\n<svg width=\"{WIDTH}\" height=\"{height}\" xmlns=\"http://www.w3.org/2000/svg\" font-family=\"monospace\" font-size=\"11\">\n", escape(title));
    for (p, lane) in &lanes {
        let y = *lane as u64 * LANE + 15;
        let _ = writeln!(out, "<text x=\"4\" y=\"{}\">process {p}</text>", y + 4);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" x2=\"{WIDTH}\" y1=\"{y}\" y2=\"{y}\" stroke=\"#eee\"/>"
        );
    }
    for b in bars {
        let y = lanes.get(&b.process).copied().unwrap_or(0) as u64 * LANE + 6;
        let x0 = x(b.start);
        let x1 = b.end.map_or(WIDTH - 10.0, x).max(x0 + 3.0);
        let stroke = if b.outcome == Outcome::Failed {
            " stroke=\"#900\" stroke-width=\"2\""
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "<g><title>[{}] process {}: {}{}</title><rect x=\"{x0:.1}\" y=\"{y}\" width=\"{:.1}\" height=\"{}\" rx=\"3\" fill=\"{}\"{stroke}/><text x=\"{:.1}\" y=\"{}\" clip-path=\"none\">{}</text></g>",
            b.index,
            b.process,
            escape(&b.label),
            if b.end.is_none() { " (unknown outcome)" } else { "" },
            x1 - x0,
            LANE - 6,
            colour(b.outcome),
            x0 + 2.0,
            y + 12,
            escape(&b.label)
        );
    }
    let _ = writeln!(out, "<text x=\"{LEFT}\" y=\"{}\" fill=\"#666\">history position {lo}</text><text x=\"{}\" y=\"{}\" fill=\"#666\" text-anchor=\"end\">{hi}</text></svg>", height - 4, WIDTH - 10.0, height - 4);
}

/// Renders the page.
pub fn render(history: &str, report: &Report, bars: &[Bar]) -> String {
    let mut out = String::new();
    let verdict = match report.valid {
        Verdict::Valid => "valid: linearizable",
        Verdict::Invalid => "INVALID: not linearizable",
        Verdict::Unknown => "unknown: undecided within the limits",
    };
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>faultline timeline: {h}</title>\n<style>body{{font-family:sans-serif;margin:1.5em}} .legend span{{display:inline-block;padding:2px 8px;margin-right:6px;border-radius:3px}} pre{{background:#f6f6f6;padding:8px}}</style></head><body>\n<h1>{h}</h1>\n<p>Model <b>{m}</b>, {ops} ops over {keys} key(s): <b>{v}</b>.</p>\n<p class=\"legend\"><span style=\"background:{c1}\">ok</span><span style=\"background:{c2}\">unknown outcome</span><span style=\"background:{c3}\">longest linearizable prefix (last steps)</span><span style=\"background:{c4}\">could not be linearized</span></p>\n",
        h = escape(history),
        m = escape(&report.model),
        ops = report.ops,
        keys = report.keys,
        v = verdict,
        c1 = colour(Outcome::Ok),
        c2 = colour(Outcome::Unknown),
        c3 = colour(Outcome::InPrefix),
        c4 = colour(Outcome::Failed),
    );
    if bars.is_empty() {
        out.push_str("<p>No failing key to draw.</p>\n");
    }
    let mut by_key: BTreeMap<Option<String>, Vec<&Bar>> = BTreeMap::new();
    for b in bars {
        by_key.entry(b.key.clone()).or_default().push(b);
    }
    for (key, bars) in &by_key {
        let title = key
            .as_ref()
            .map_or_else(|| "history".to_string(), |k| format!("key {k}"));
        panel(&mut out, &title, bars);
        if let Some(a) = report
            .anomalies
            .iter()
            .find(|a| a.key.as_ref().map(|k| k.to_string()) == *key)
        {
            let text = serde_json::to_string_pretty(&a.result).unwrap_or_default();
            let _ = writeln!(out, "<pre>{}</pre>", escape(&text));
        }
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
