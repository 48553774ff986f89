//! The morning-after report of a run: report.html (verdict, anomalies, faults, plots),
//! latency.svg and rate.svg (drawn in Rust with plotters, fault intervals shaded, ops coloured
//! by outcome, as Jepsen's perf graphs), and junit.xml for CI systems. Everything is read back
//! from the run's directory (history.jsonl, results.json, test.yaml), so `faultline analyze`
//! can redraw it.

mod data;
mod html;
mod junit;
mod plots;

pub use data::RunData;

use std::path::Path;

/// The verdict of a run, as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid.
    Valid,
    /// Invalid.
    Invalid,
    /// Unknown (a budget ran out, or a set had no final read).
    Unknown,
    /// The run could not be completed.
    Error,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "INVALID",
            Verdict::Unknown => "unknown",
            Verdict::Error => "error",
        }
    }
}

/// Writes latency.svg, rate.svg, report.html and junit.xml into the run's directory `dir`.
/// `detail` is a line or two about the verdict (the checker's summary, or the error).
pub fn write(dir: &Path, test_name: &str, verdict: Verdict, detail: &str) -> anyhow::Result<()> {
    let data = RunData::read(&dir.join("history.jsonl"))?;
    let latency = plots::latency(&data)?;
    let rate = plots::rate(&data)?;
    std::fs::write(dir.join("latency.svg"), &latency)?;
    std::fs::write(dir.join("rate.svg"), &rate)?;
    let results = std::fs::read_to_string(dir.join("results.json")).unwrap_or_default();
    let test_yaml = std::fs::read_to_string(dir.join("test.yaml")).unwrap_or_default();
    let page = html::page(&html::Inputs {
        test_name,
        verdict,
        detail,
        data: &data,
        results: &results,
        test_yaml: &test_yaml,
        latency_svg: &latency,
        rate_svg: &rate,
    });
    std::fs::write(dir.join("report.html"), page)?;
    std::fs::write(
        dir.join("junit.xml"),
        junit::xml(test_name, verdict, detail, &data),
    )?;
    Ok(())
}

/// Escapes text for HTML and XML.
pub(crate) use crate::timeline::escape as esc;
