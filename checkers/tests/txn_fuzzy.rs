//! Non-repeatable (fuzzy) reads, hand-written: read committed allows them (each statement may
//! take a new snapshot), every stronger model forbids them, each such read is evidence like a
//! first read, and what contradicts a transaction's own writes stays `internal`. The
//! brute-force oracle must agree with every verdict.

use checkers::txn::report::TxnReport;
use checkers::txn::{check, oracle, parse, Budget, Consistency, TxnHistory, TxnModel};
use checkers::Verdict;

/// A history from `(process, type, micro-ops)` lines, indices in order.
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
    parse::from_text(model, "fuzzy", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn la(lines: &[(u64, &str, &str)]) -> TxnHistory {
    history(TxnModel::ListAppend, lines)
}

fn rw(lines: &[(u64, &str, &str)]) -> TxnHistory {
    history(TxnModel::RwRegister, lines)
}

/// The checker's report under `c`, after checking that the oracle agrees with its verdict.
fn run(h: &TxnHistory, c: Consistency) -> TxnReport {
    let r = check(h, c, &Budget::default());
    assert_ne!(r.valid, Verdict::Unknown, "{c}: {:?}", r.unknown_reason);
    assert_eq!(
        r.valid == Verdict::Valid,
        oracle::check(h, c),
        "{c}: checker and oracle disagree: {}",
        r.human("h")
    );
    r
}

/// Valid at read committed and invalid under every other model, each report naming a
/// fuzzy read (and never the search's `no-valid-order`, nor `internal`).
fn read_committed_only(h: &TxnHistory) {
    for c in Consistency::ALL {
        let r = run(h, c);
        let want = if c == Consistency::ReadCommitted {
            Verdict::Valid
        } else {
            Verdict::Invalid
        };
        assert_eq!(r.valid, want, "{c}: {}", r.human("h"));
        assert!(
            r.anomalies.contains_key("fuzzy-read"),
            "{c}: {}",
            r.human("h")
        );
        assert!(!r.anomalies.contains_key("internal"), "{c}");
        assert!(!r.anomalies.contains_key("no-valid-order"), "{c}");
    }
    let r = run(h, Consistency::StrictSerializable);
    assert_eq!(r.not, vec!["repeatable-read", "snapshot-isolation"]);
}

/// T1 reads x twice while T0, concurrent, commits a write of x: the second read sees it.
#[test]
fn a_repeated_read_that_sees_a_newer_commit_is_read_committed() {
    let h = la(&[
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (1, "invoke", r#"[["append","x",1]]"#),
        (1, "ok", r#"[["append","x",1]]"#),
        (0, "ok", r#"[["r","x",[]],["r","x",[1]]]"#),
    ]);
    read_committed_only(&h);
    let r = run(&h, Consistency::RepeatableRead);
    let a = &r.anomalies["fuzzy-read"][0];
    assert_eq!(
        a.explanation,
        "T0 read x = [], then x = [1] with no write of its own between"
    );
    // The cycle the two reads close names each read where it belongs.
    let whys: Vec<&str> = r.anomalies["G-single"][0]
        .cycle
        .iter()
        .map(|e| e.why.as_str())
        .collect();
    assert_eq!(
        whys,
        [
            "T0 read x = []; T1 appended 1, the next element of x after that (T0 read x = [1]), so T0 rw-precedes T1",
            "T1 appended 1 to x; T0 read x = [1], which ends with it, so T1 wr-precedes T0"
        ]
    );
    let h = rw(&[
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (1, "invoke", r#"[["w","x",1]]"#),
        (1, "ok", r#"[["w","x",1]]"#),
        (0, "ok", r#"[["r","x",null],["r","x",1]]"#),
    ]);
    read_committed_only(&h);
    let r = run(&h, Consistency::Serializable);
    assert_eq!(
        r.anomalies["fuzzy-read"][0].explanation,
        "T0 read x = null, then x = 1 with no write of its own between"
    );
}

/// Reading the same value again is no anomaly; nor is an older value after a newer one
/// anything but a fuzzy read (read committed does not promise monotonic reads).
#[test]
fn same_value_again_is_nothing_and_an_older_one_is_fuzzy() {
    let h = la(&[
        (1, "invoke", r#"[["append","x",1]]"#),
        (1, "ok", r#"[["append","x",1]]"#),
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (0, "ok", r#"[["r","x",[1]],["r","x",[1]]]"#),
    ]);
    for c in Consistency::ALL {
        assert_eq!(run(&h, c).valid, Verdict::Valid, "{c}");
    }
    let h = rw(&[
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (1, "invoke", r#"[["w","x",1]]"#),
        (1, "ok", r#"[["w","x",1]]"#),
        (0, "ok", r#"[["r","x",1],["r","x",null]]"#),
    ]);
    read_committed_only(&h);
}

/// list-append: T1 read x = [], appended 2, then read x = [1, 2]: its append went onto a
/// newer committed state than it had read, a fuzzy read too.
#[test]
fn appends_onto_a_newer_state_than_read_are_a_fuzzy_read() {
    let h = la(&[
        (
            0,
            "invoke",
            r#"[["r","x",null],["append","x",2],["r","x",null]]"#,
        ),
        (1, "invoke", r#"[["append","x",1]]"#),
        (1, "ok", r#"[["append","x",1]]"#),
        (
            0,
            "ok",
            r#"[["r","x",[]],["append","x",2],["r","x",[1,2]]]"#,
        ),
        (2, "invoke", r#"[["r","x",null]]"#),
        (2, "ok", r#"[["r","x",[1,2]]]"#),
    ]);
    read_committed_only(&h);
    let r = run(&h, Consistency::Serializable);
    assert!(
        r.anomalies["fuzzy-read"][0]
            .explanation
            .contains("its appends went onto [1], not onto what it had read"),
        "{}",
        r.human("h")
    );
}

/// A fuzzy read of an aborted write is G1a, at read committed too.
#[test]
fn a_fuzzy_read_of_an_aborted_write_is_g1a() {
    let h = la(&[
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (1, "invoke", r#"[["append","x",1]]"#),
        (1, "fail", r#"[["append","x",1]]"#),
        (0, "ok", r#"[["r","x",[]],["r","x",[1]]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(r.anomalies.contains_key("G1a"), "{}", r.human("h"));
    let h = rw(&[
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (1, "invoke", r#"[["w","x",1]]"#),
        (1, "fail", r#"[["w","x",1]]"#),
        (0, "ok", r#"[["r","x",null],["r","x",1]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(r.anomalies.contains_key("G1a"), "{}", r.human("h"));
}

/// A G1c cycle whose wr edge comes from a transaction's second read of a key: found at read
/// committed (using only first reads, as Elle does, would miss it).
#[test]
fn a_g1c_cycle_through_a_second_read_is_found() {
    let h = la(&[
        (
            0,
            "invoke",
            r#"[["append","y",1],["r","x",null],["r","x",null]]"#,
        ),
        (1, "invoke", r#"[["append","x",2],["r","y",null]]"#),
        (0, "ok", r#"[["append","y",1],["r","x",[]],["r","x",[2]]]"#),
        (1, "ok", r#"[["append","x",2],["r","y",[1]]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid, "{}", r.human("h"));
    assert!(r.anomalies.contains_key("G1c"), "{}", r.human("h"));
    let whys: Vec<&str> = r.anomalies["G1c"][0]
        .cycle
        .iter()
        .map(|e| e.why.as_str())
        .collect();
    assert!(
        whys.iter()
            .any(|w| w.starts_with("T1 appended 2 to x; T0 read x = [2], which ends with it")),
        "{whys:?}"
    );
    let h = rw(&[
        (
            0,
            "invoke",
            r#"[["w","y",1],["r","x",null],["r","x",null]]"#,
        ),
        (1, "invoke", r#"[["w","x",2],["r","y",null]]"#),
        (0, "ok", r#"[["w","y",1],["r","x",null],["r","x",2]]"#),
        (1, "ok", r#"[["w","x",2],["r","y",1]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid, "{}", r.human("h"));
    assert!(r.anomalies.contains_key("G1c"), "{}", r.human("h"));
}

/// A second read is version-order evidence too: two reads of one transaction that are not
/// prefixes of one another are an incompatible order.
#[test]
fn a_second_read_is_checked_against_the_version_order() {
    let h = la(&[
        (1, "invoke", r#"[["append","x",1]]"#),
        (1, "ok", r#"[["append","x",1]]"#),
        (2, "invoke", r#"[["append","x",2]]"#),
        (2, "ok", r#"[["append","x",2]]"#),
        (0, "invoke", r#"[["r","x",null],["r","x",null]]"#),
        (0, "ok", r#"[["r","x",[1]],["r","x",[2]]]"#),
    ]);
    let r = run(&h, Consistency::ReadCommitted);
    assert_eq!(r.valid, Verdict::Invalid);
    assert!(
        r.anomalies.contains_key("incompatible-order"),
        "{}",
        r.human("h")
    );
}

/// What contradicts a transaction's own writes stays `internal`, under every model: a read
/// after its write that lacks it, and (list-append) a base that changes between two reads
/// after its first append.
#[test]
fn contradicting_its_own_writes_is_still_internal() {
    let lists = [
        (
            r#"[["append","x",3],["r","x",null]]"#,
            r#"[["append","x",3],["r","x",[1]]]"#,
        ),
        (
            r#"[["append","x",3],["r","x",null],["r","x",null]]"#,
            r#"[["append","x",3],["r","x",[3]],["r","x",[1,3]]]"#,
        ),
        (
            r#"[["r","x",null],["append","x",3],["r","x",null],["append","x",4],["r","x",null]]"#,
            r#"[["r","x",[]],["append","x",3],["r","x",[3]],["append","x",4],["r","x",[1,3,4]]]"#,
        ),
    ];
    for (invoke, ok) in lists {
        let h = la(&[
            (1, "invoke", r#"[["append","x",1]]"#),
            (1, "ok", r#"[["append","x",1]]"#),
            (0, "invoke", invoke),
            (0, "ok", ok),
        ]);
        for c in Consistency::ALL {
            let r = run(&h, c);
            assert_eq!(r.valid, Verdict::Invalid, "{ok} {c}");
            assert!(r.anomalies.contains_key("internal"), "{ok} {c}");
            assert!(!r.anomalies.contains_key("fuzzy-read"), "{ok} {c}");
        }
    }
    let h = rw(&[
        (1, "invoke", r#"[["w","x",1]]"#),
        (1, "ok", r#"[["w","x",1]]"#),
        (
            0,
            "invoke",
            r#"[["r","x",null],["w","x",3],["r","x",null]]"#,
        ),
        (0, "ok", r#"[["r","x",1],["w","x",3],["r","x",1]]"#),
    ]);
    for c in Consistency::ALL {
        let r = run(&h, c);
        assert_eq!(r.valid, Verdict::Invalid, "{c}");
        assert_eq!(
            r.anomalies["internal"][0].explanation,
            "T2 read x = 1 after its own write of 3"
        );
    }
}
