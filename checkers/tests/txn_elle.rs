//! Elle's own histories (converted to history.jsonl in ../shared/data/elle) and the verdict
//! expected per consistency model: every row must agree with the `oracle` column.
//!
//! The directory sits next to the workspace root. When it is absent this test fails, unless
//! FAULTLINE_SKIP_ELLE=1 says to skip it (then it prints that it skipped).

use checkers::txn::{check, parse, Budget, Consistency, TxnModel};
use checkers::Verdict;
use std::path::PathBuf;

fn elle_dir() -> Option<PathBuf> {
    // FAULTLINE_ELLE names the directory when the workspace is not next to ../shared (a git
    // worktree elsewhere).
    let dir = match std::env::var_os("FAULTLINE_ELLE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/elle"),
    };
    if dir.join("expected.tsv").exists() {
        return Some(dir);
    }
    if std::env::var("FAULTLINE_SKIP_ELLE").as_deref() == Ok("1") {
        eprintln!(
            "SKIPPED: {} is absent and FAULTLINE_SKIP_ELLE=1",
            dir.display()
        );
        return None;
    }
    panic!(
        "{} is absent: Elle's histories are needed (set FAULTLINE_SKIP_ELLE=1 to skip)",
        dir.display()
    );
}

#[test]
fn every_row_of_expected_tsv_agrees_with_the_oracle() {
    let Some(dir) = elle_dir() else { return };
    let tsv = std::fs::read_to_string(dir.join("expected.tsv")).expect("expected.tsv");
    let mut rows = 0;
    let mut bad = Vec::new();
    for line in tsv.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (file, model, consistency, oracle) = (cols[0], cols[1], cols[2], cols[4]);
        let model = TxnModel::parse(model).expect("model");
        let c: Consistency = consistency.parse().expect("consistency");
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path).expect("history");
        let h = parse::from_text(model, file, &text).unwrap_or_else(|e| panic!("{e}"));
        let r = check(&h, c, &Budget::default());
        let want = match oracle {
            "true" => Verdict::Valid,
            "false" => Verdict::Invalid,
            other => panic!("oracle {other}"),
        };
        rows += 1;
        if r.valid != want {
            bad.push(format!(
                "{file} {consistency}: expected {oracle}, got {:?} (anomalies {:?})",
                r.valid, r.anomaly_counts
            ));
        }
    }
    eprintln!("{rows} rows checked, {} disagree", bad.len());
    assert!(rows >= 100, "expected.tsv has {rows} rows");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
