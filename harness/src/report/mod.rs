//! The morning-after report of a run: report.html (verdict, anomalies, faults, plots),
//! latency.svg and rate.svg (drawn in Rust with plotters, fault intervals shaded, ops coloured
//! by outcome, as Jepsen's perf graphs), and junit.xml for CI systems. Everything is read back
//! from the run's directory (history.jsonl, results.json, test.yaml), so `faultline analyze`
//! can redraw it.

mod anomalies;
mod data;
mod html;
mod junit;
mod plots;

pub use data::RunData;

use crate::power::Power;
use checkers::check::{Details, Results};
use checkers::Verdict;
use std::path::Path;

/// What a report shows at its top: the checker's verdict, or that the run could not be
/// completed (no verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Checked, with this verdict.
    Checked(Verdict),
    /// The run could not be completed.
    Error,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Checked(Verdict::Valid) => "valid",
            Status::Checked(Verdict::Invalid) => "INVALID",
            Status::Checked(Verdict::Unknown) => "unknown",
            Status::Error => "error",
        }
    }
}

/// Writes latency.svg, rate.svg, report.html and junit.xml into the run's directory `dir`.
/// `detail` is a line or two about the verdict (the checker's summary, or the error);
/// `results` and `power` are the typed values results.json was written from (none when the
/// run ended without a verdict).
pub fn write(
    dir: &Path,
    test_name: &str,
    verdict: Status,
    detail: &str,
    results: Option<&Results>,
    power: Option<&Power>,
) -> anyhow::Result<()> {
    // The set checker's lost elements, to be set against the faults.
    let lost: std::collections::HashSet<i64> = match results.map(|r| &r.details) {
        Some(Details::Set(r)) => r.lost.iter().copied().collect(),
        _ => Default::default(),
    };
    let data = RunData::read_watching(&dir.join("history.jsonl"), &lost)?;
    let latency = plots::latency(&data)?;
    let unavailable = power.map_or(&[][..], |p| &p.availability.unavailable[..]);
    let rate = plots::rate(&data, unavailable)?;
    std::fs::write(dir.join("latency.svg"), &latency)?;
    std::fs::write(dir.join("rate.svg"), &rate)?;
    let test_yaml = std::fs::read_to_string(dir.join("test.yaml")).unwrap_or_default();
    let page = html::page(&html::Inputs {
        test_name,
        verdict,
        detail,
        data: &data,
        results,
        power,
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
