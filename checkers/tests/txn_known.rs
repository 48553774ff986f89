//! Known transactional anomalies, each with the verdicts and names the checker must give.

use checkers::txn::report::TxnReport;
use checkers::txn::{check, list_append, parse, Budget, Consistency, TxnHistory, TxnModel};
use checkers::Verdict;

/// Builds a history from compact lines: `p type [[mop]...]`, indices and positions in order.
fn history(model: TxnModel, lines: &[(u64, &str, &str)]) -> TxnHistory {
    let text: String = lines
        .iter()
        .enumerate()
        .map(|(i, (p, ty, v))| {
            format!(
                "{{\"index\":{i},\"process\":{p},\"type\":\"{ty}\",\"f\":\"txn\",\"value\":{v}}}\n"
            )
        })
        .collect();
    parse::from_text(model, "known", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn la(lines: &[(u64, &str, &str)]) -> TxnHistory {
    history(TxnModel::ListAppend, lines)
}

fn run(h: &TxnHistory, c: Consistency) -> TxnReport {
    check(h, c, &Budget::default())
}

#[test]
fn write_skew_is_snapshot_isolated_but_g2_item() {
    let h = la(&[
        (
            0,
            "invoke",
            r#"[["r","x",null],["r","y",null],["append","x",1]]"#,
        ),
        (
            1,
            "invoke",
            r#"[["r","x",null],["r","y",null],["append","y",1]]"#,
        ),
        (0, "ok", r#"[["r","x",[]],["r","y",[]],["append","x",1]]"#),
        (1, "ok", r#"[["r","x",[]],["r","y",[]],["append","y",1]]"#),
    ]);
    assert_eq!(
        run(&h, Consistency::SnapshotIsolation).valid,
        Verdict::Valid
    );
    let r = run(&h, Consistency::Serializable);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(
        r.anomalies.contains_key("G2-item"),
        "{:?}",
        r.anomaly_counts
    );
    assert_eq!(r.not, vec!["repeatable-read"]);
    assert_eq!(r.also_not, vec!["serializable", "strict-serializable"]);
}

#[test]
fn lost_update_is_not_snapshot_isolated() {
    let h = la(&[
        (0, "invoke", r#"[["r","x",null],["append","x",1]]"#),
        (1, "invoke", r#"[["r","x",null],["append","x",2]]"#),
        (0, "ok", r#"[["r","x",[]],["append","x",1]]"#),
        (1, "ok", r#"[["r","x",[]],["append","x",2]]"#),
    ]);
    let r = run(&h, Consistency::SnapshotIsolation);
    assert_eq!(r.valid, Verdict::Invalid, "{}", r.human("h"));
    assert!(
        r.anomalies.contains_key("lost-update"),
        "{:?}",
        r.anomaly_counts
    );
    assert_eq!(run(&h, Consistency::ReadCommitted).valid, Verdict::Valid);
}

#[test]
fn stale_read_is_serializable_but_not_strict() {
    let h = la(&[
        (0, "invoke", r#"[["append","x",1]]"#),
        (0, "ok", r#"[["append","x",1]]"#),
        (1, "invoke", r#"[["r","x",null]]"#),
        (1, "ok", r#"[["r","x",[]]]"#),
    ]);
    assert_eq!(run(&h, Consistency::Serializable).valid, Verdict::Valid);
    let r = run(&h, Consistency::StrictSerializable);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(
        r.anomalies.contains_key("G-single-realtime") || r.anomalies.contains_key("G2-realtime"),
        "{:?}",
        r.anomaly_counts
    );
    let cycle = &r.anomalies["G-single-realtime"][0].cycle;
    let why: Vec<&str> = cycle.iter().map(|e| e.why.as_str()).collect();
    assert!(
        why.contains(
            &"T0 completed (index 1) before T2 was invoked (index 2), so T0 realtime-precedes T2"
        ),
        "{why:?}"
    );
    assert!(
        why.iter()
            .any(|w| w.starts_with("T2 read x = []; T0 appended 1 to x, which no read observed")),
        "{why:?}"
    );
}

#[test]
fn aborted_read_is_g1a() {
    let h = la(&[
        (0, "invoke", r#"[["append","x",1]]"#),
        (0, "fail", r#"[["append","x",1]]"#),
        (1, "invoke", r#"[["r","x",null]]"#),
        (1, "ok", r#"[["r","x",[1]]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(r.anomalies.contains_key("G1a"));
    assert_eq!(r.not, vec!["read-committed"]);
}

#[test]
fn intermediate_read_is_g1b() {
    let h = la(&[
        (0, "invoke", r#"[["append","x",1],["append","x",2]]"#),
        (0, "ok", r#"[["append","x",1],["append","x",2]]"#),
        (1, "invoke", r#"[["r","x",null]]"#),
        (1, "ok", r#"[["r","x",[1]]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(r.anomalies.contains_key("G1b"));
}

#[test]
fn info_transactions_commit_exactly_when_observed() {
    let h = la(&[
        (0, "invoke", r#"[["append","x",1]]"#),
        (0, "info", r#"[["append","x",1]]"#),
        (1, "invoke", r#"[["append","y",1]]"#),
        (1, "info", r#"[["append","y",1]]"#),
        (2, "invoke", r#"[["r","x",null],["r","y",null]]"#),
        (2, "ok", r#"[["r","x",[1]],["r","y",[]]]"#),
    ]);
    let inf = list_append::infer(&h);
    assert_eq!(inf.committed, vec![true, false, true]);
    assert_eq!(
        run(&h, Consistency::StrictSerializable).valid,
        Verdict::Valid
    );
}

#[test]
fn explanations_name_values_and_reads() {
    // G1c: T0 and T1 each read the other's append.
    let h = la(&[
        (0, "invoke", r#"[["append","x",1],["r","y",null]]"#),
        (1, "invoke", r#"[["append","y",1],["r","x",null]]"#),
        (0, "ok", r#"[["append","x",1],["r","y",[1]]]"#),
        (1, "ok", r#"[["append","y",1],["r","x",[1]]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    let cycle = &r.anomalies["G1c"][0].cycle;
    let why: Vec<&str> = cycle.iter().map(|e| e.why.as_str()).collect();
    assert!(
        why.contains(
            &"T0 appended 1 to x; T1 read x = [1], which ends with it, so T0 wr-precedes T1"
        ),
        "{why:?}"
    );
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["consistency"], "read-committed");
    assert_eq!(json["valid"], false);
    assert_eq!(json["anomalies"]["G1c"][0]["cycle"][0]["kind"], "wr");
}

#[test]
fn rw_register_known_cases() {
    let rw = |l: &[(u64, &str, &str)]| history(TxnModel::RwRegister, l);
    // Write skew on registers.
    let h = rw(&[
        (
            0,
            "invoke",
            r#"[["r","x",null],["r","y",null],["w","x",1]]"#,
        ),
        (
            1,
            "invoke",
            r#"[["r","x",null],["r","y",null],["w","y",1]]"#,
        ),
        (0, "ok", r#"[["r","x",null],["r","y",null],["w","x",1]]"#),
        (1, "ok", r#"[["r","x",null],["r","y",null],["w","y",1]]"#),
    ]);
    assert_eq!(
        run(&h, Consistency::SnapshotIsolation).valid,
        Verdict::Valid
    );
    let r = run(&h, Consistency::Serializable);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(
        r.anomalies.contains_key("G2-item"),
        "{:?}",
        r.anomaly_counts
    );
    // Aborted read.
    let h = rw(&[
        (0, "invoke", r#"[["w","x",1]]"#),
        (0, "fail", r#"[["w","x",1]]"#),
        (1, "invoke", r#"[["r","x",null]]"#),
        (1, "ok", r#"[["r","x",1]]"#),
    ]);
    assert!(run(&h, Consistency::ReadCommitted)
        .anomalies
        .contains_key("G1a"));
}

#[test]
fn snapshot_isolation_chooses_the_order_of_unread_appends() {
    // T0 appends to x without reading it and completes first; T1 read x = [] and appended to
    // x. Nobody reads x again. T0 before T1 on x would make T1's read lose T0's append
    // (T0 -ww-> T1 -rw-> T0); T1 before T0 is a valid snapshot-isolated execution. The
    // completion order (T0 first) is wrong here, so the checker must look further.
    let h = la(&[
        (0, "invoke", r#"[["append","x",1]]"#),
        (1, "invoke", r#"[["r","x",null],["append","x",2]]"#),
        (0, "ok", r#"[["append","x",1]]"#),
        (1, "ok", r#"[["r","x",[]],["append","x",2]]"#),
    ]);
    assert!(checkers::txn::oracle::check(
        &h,
        Consistency::SnapshotIsolation
    ));
    assert_eq!(
        run(&h, Consistency::SnapshotIsolation).valid,
        Verdict::Valid
    );
    // Both read x = [] and both appended: every order loses an update.
    let h = la(&[
        (0, "invoke", r#"[["r","x",null],["append","x",1]]"#),
        (1, "invoke", r#"[["r","x",null],["append","x",2]]"#),
        (2, "invoke", r#"[["append","y",1]]"#),
        (0, "ok", r#"[["r","x",[]],["append","x",1]]"#),
        (1, "ok", r#"[["r","x",[]],["append","x",2]]"#),
        (2, "ok", r#"[["append","y",1]]"#),
    ]);
    assert!(!checkers::txn::oracle::check(
        &h,
        Consistency::SnapshotIsolation
    ));
    let r = run(&h, Consistency::SnapshotIsolation);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(r.anomalies.contains_key("lost-update"));
}
