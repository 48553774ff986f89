//! `RUN/shrink/steps.md`: every candidate of a shrink, what it removed, its runs and its
//! verdict, then the best plan, as text for people.

use super::{Change, Outcome, Search};
use std::fmt::Write;

/// What steps.md says about the run shrunk, beside the search.
pub struct Header<'a> {
    /// The run shrunk (`TEST/TIME`).
    pub run: &'a str,
    /// The original's violation (`invalid (nonlinearizable: 3)`).
    pub violation: &'a str,
    /// Tries per candidate.
    pub tries: u64,
    /// The original's seed (the first try's).
    pub seed: u64,
}

/// The phase a change belongs to.
fn phase(change: &Change) -> &'static str {
    match change {
        Change::Original => "original",
        Change::Faults { .. } => "faults",
        Change::TimeLimit { .. } => "time limit",
        Change::Concurrency { .. } => "workers",
        Change::OpsPerKey { .. } => "keys",
    }
}

/// The whole of steps.md.
pub fn markdown(h: &Header<'_>, search: &Search) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Shrinking {}\n", h.run);
    let _ = writeln!(
        out,
        "Original: {}; its violation: {}.\n",
        search.describe_size(&search.original),
        h.violation
    );
    let _ = writeln!(
        out,
        "Each candidate runs up to {} times (the first with the run's seed {}, then the seeds \
         after it) and is kept when one run is invalid with one of the original's anomalies.\n",
        h.tries, h.seed
    );
    let _ = writeln!(out, "| candidate | phase | change | verdict | runs |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for t in &search.trials {
        let runs: Vec<String> = t
            .runs
            .iter()
            .map(|r| match &r.dir {
                Some(d) => format!("`{d}` seed {}: {}", r.seed, r.verdict),
                None => format!("seed {}: {}", r.seed, r.verdict),
            })
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            t.cell,
            phase(&t.candidate.change),
            search.describe(&t.candidate.change).replace('|', "\\|"),
            if t.reproduced {
                "reproduced (kept)"
            } else {
                "not reproduced"
            },
            runs.join("<br>").replace('|', "\\|")
        );
    }
    let status = match (search.outcome(), search.finished()) {
        (Outcome::NotReproduced, _) => "the original plan did not reproduce: nothing to shrink",
        (Outcome::Smaller, true) => "finished: the smallest plan found",
        (Outcome::Smaller, false) => "stopped before the end: the smallest plan so far",
        (Outcome::Minimal, _) => "finished: the original plan is already minimal",
        (Outcome::Searching, _) => "stopped before anything smaller reproduced",
    };
    let _ = writeln!(
        out,
        "\n{status} ({}, now at: {}).\n\nBest: {}.",
        super::candidates(search.trials.len()),
        search.phase_name(),
        search.describe_size(&search.best)
    );
    out
}
