//! The history recorder under SIGKILL: a controller killed mid-run leaves a history whose
//! every complete line is valid and that `faultline check` analyzes (a torn last line is
//! accepted with --allow-truncated).

use checkers::Verdict;
use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};
mod common;
use common::{cmd_stateless, faultline_stateless, results_doc};

#[test]
fn a_killed_run_leaves_a_readable_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("history.jsonl");
    let mut child = cmd_stateless(&[
        "bench-record",
        "--ops",
        "1000000000",
        "--workers",
        "50",
        "--out",
    ])
    .arg(&out)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < 2_000_000 {
        assert!(Instant::now() < deadline, "the run wrote too little");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill on our own child's PID.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();

    let file = std::fs::File::open(&out).unwrap();
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map(Result::unwrap)
        .collect();
    assert!(lines.len() > 10_000, "{} lines", lines.len());
    let bad = lines[..lines.len() - 1]
        .iter()
        .filter(|l| serde_json::from_str::<serde_json::Value>(l).is_err())
        .count();
    assert_eq!(bad, 0, "only the last line may be torn");

    let check = faultline_stateless(&[
        "check",
        "--model",
        "set",
        "--allow-truncated",
        "--json",
        out.to_str().expect("a UTF-8 path"),
    ]);
    assert_eq!(check.status.code(), Some(0));
    let doc = results_doc(&check.stdout);
    assert_eq!(doc.head.valid, Verdict::Valid, "{doc:?}");
    assert!(doc.details["ops"].as_u64().unwrap_or(0) > 5_000, "{doc:?}");
}
