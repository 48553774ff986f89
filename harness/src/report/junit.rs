//! junit.xml: one test suite with one test case per run, for CI systems.

use super::{esc, RunData, Status};
use checkers::Verdict;

/// The junit.xml of a run.
pub fn xml(test_name: &str, verdict: Status, detail: &str, d: &RunData) -> String {
    let (failures, errors, body) = match verdict {
        Status::Checked(Verdict::Valid) => (0, 0, String::new()),
        Status::Checked(Verdict::Invalid) => (
            1,
            0,
            format!(
                "<failure message=\"history not consistent\" type=\"invalid\">{}</failure>",
                esc(detail)
            ),
        ),
        Status::Checked(Verdict::Unknown) => (
            0,
            1,
            format!(
                "<error message=\"verdict unknown\" type=\"unknown\">{}</error>",
                esc(detail)
            ),
        ),
        Status::Error => (
            0,
            1,
            format!(
                "<error message=\"run failed\" type=\"error\">{}</error>",
                esc(detail)
            ),
        ),
    };
    let n = esc(test_name);
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n<testsuite name=\"faultline\" tests=\"1\" failures=\"{failures}\" errors=\"{errors}\" time=\"{:.3}\">\n<testcase classname=\"faultline\" name=\"{n}\" time=\"{:.3}\">{body}<system-out>ops: {} ok, {} fail, {} info; {} faults; {} scheduled steps not taken</system-out></testcase>\n</testsuite>\n</testsuites>\n",
        d.duration, d.duration, d.totals[0], d.totals[1], d.totals[2], d.faults.len(), d.not_applied.len()
    )
}
