//! `faultline campaign --compare PREVIOUS`: what changed since an earlier campaign, cell by
//! cell (by id): new failures (invalid now, not before), fixed (invalid before, valid now)
//! and still failing.

use super::report::{self, CellResult, Status};
use crate::exit::{bad_input, Exit, Failure};
use std::collections::BTreeMap;
use std::path::Path;

/// The cells that changed between two campaigns.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// Invalid now, not invalid (or absent) before.
    pub new_failures: Vec<String>,
    /// Invalid before, valid (weak included) now.
    pub fixed: Vec<String>,
    /// Invalid before and now.
    pub still_failing: Vec<String>,
}

/// Compares the cells of an earlier campaign with this one's.
pub fn diff(previous: &[CellResult], now: &[CellResult]) -> Diff {
    let before: BTreeMap<&str, Status> =
        previous.iter().map(|r| (r.id.as_str(), r.status)).collect();
    let mut d = Diff::default();
    for r in now {
        let was_invalid = before.get(r.id.as_str()) == Some(&Status::Invalid);
        match (was_invalid, r.status) {
            (false, Status::Invalid) => d.new_failures.push(r.id.clone()),
            (true, Status::Invalid) => d.still_failing.push(r.id.clone()),
            (true, Status::Valid | Status::Weak) => d.fixed.push(r.id.clone()),
            _ => {}
        }
    }
    d
}

/// Prints the comparison with the campaign in `previous` (its directory, holding
/// cells.json); exit 1 when there are new failures, else 2 when this campaign had unknown,
/// weak or failed cells, else 0.
pub fn against(previous: &Path, now: &[CellResult], exit: Exit) -> Result<Exit, Failure> {
    let before = report::read(previous).map_err(bad_input)?;
    let d = diff(&before, now);
    println!("compared with {}:", previous.display());
    for (title, ids) in [
        ("new failures", &d.new_failures),
        ("fixed", &d.fixed),
        ("still failing", &d.still_failing),
    ] {
        println!("{title}: {}", ids.len());
        for id in ids {
            println!("  {id}");
        }
    }
    Ok(match exit {
        _ if !d.new_failures.is_empty() => Exit::Invalid,
        Exit::Invalid => Exit::Valid,
        e => e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(id: &str, status: Status) -> CellResult {
        CellResult {
            id: id.into(),
            config: String::new(),
            seed: 1,
            status,
            dir: None,
            summary: String::new(),
            anomalies: Default::default(),
            weak: vec![],
            duration_s: None,
        }
    }

    #[test]
    fn changes_are_sorted_into_new_fixed_and_still_failing() {
        let before = [
            cell("a", Status::Valid),
            cell("b", Status::Invalid),
            cell("c", Status::Invalid),
            cell("d", Status::Unknown),
            cell("e", Status::Invalid),
        ];
        let now = [
            cell("a", Status::Invalid),
            cell("b", Status::Invalid),
            cell("c", Status::Weak),
            cell("d", Status::Invalid),
            cell("e", Status::Error),
            cell("f", Status::Invalid),
        ];
        assert_eq!(
            diff(&before, &now),
            Diff {
                new_failures: vec!["a".into(), "d".into(), "f".into()],
                fixed: vec!["c".into()],
                still_failing: vec!["b".into()],
            }
        );
        assert_eq!(diff(&now, &now).new_failures, Vec::<String>::new());
    }
}
