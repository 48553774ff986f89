//! Snapshot isolation of list-append at sizes where the unobserved appends' orders matter:
//! histories from the snapshot-isolation executor with many crashed transactions (whose
//! appends often go unread) are decided valid, and the read-committed executor's (lost
//! updates) invalid, never unknown. Before the witness built under a dynamic topological
//! order (`txn/si_order.rs`), the valid one (300,000 transactions, 5% crashed, 11,308 keys
//! with several unread appends) ended `unknown` after 85 s: the exhaustive search ran out of
//! time.

use checkers::read::Located;
use checkers::txn::generate::{generate, Executor, TxnGenOptions};
use checkers::txn::{check, parse, Budget, Consistency, TxnHistory, TxnModel};
use checkers::Verdict;
use std::time::Duration;

fn history(executor: Executor, txns: u64, seed: u64) -> TxnHistory {
    let mut events = Vec::new();
    let o = TxnGenOptions {
        model: TxnModel::ListAppend,
        txns,
        processes: 10,
        keys: 100,
        crash_rate: 0.05,
        executor,
        seed,
        ..TxnGenOptions::default()
    };
    generate(&o, |e| events.push(e));
    let located = events.into_iter().enumerate().map(|(i, e)| Located {
        line: i as u64 + 1,
        f_column: 1,
        value_column: 1,
        event: e,
    });
    parse::from_events(TxnModel::ListAppend, "gen", located).expect("well formed")
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "300,000 transactions: run in release (cargo test --release)"
)]
fn snapshot_isolation_is_decided_at_scale() {
    let budget = Budget {
        time: Some(Duration::from_secs(20)),
        ..Budget::default()
    };
    let seed = 3;
    {
        let h = history(Executor::SnapshotIsolation, 300_000, seed);
        let r = check(&h, Consistency::SnapshotIsolation, &budget);
        assert_eq!(
            r.valid,
            Verdict::Valid,
            "seed {seed}: {:?}",
            r.unknown_reason
        );
        let h = history(Executor::ReadCommitted, 300_000, seed);
        let r = check(&h, Consistency::SnapshotIsolation, &budget);
        assert_eq!(
            r.valid,
            Verdict::Invalid,
            "seed {seed}: {:?}",
            r.unknown_reason
        );
    }
}
