//! Hand-written histories with known verdicts, through both the fast path and the search.

use checkers::linear::{check_ops, Limits, Operation, Strategy, Verdict};
use checkers::model::{Register, RegisterOp};

/// Builds ops from (op, call, ret) triples; ret None = unknown outcome.
fn ops(spec: &[(RegisterOp, u64, Option<u64>)]) -> Vec<Operation<RegisterOp>> {
    spec.iter()
        .enumerate()
        .map(|(i, &(op, call, ret))| Operation {
            op,
            call,
            ret,
            process: i as u64,
            invoke_index: call,
            complete_index: ret,
        })
        .collect()
}

fn verdicts(model: &Register, h: &[Operation<RegisterOp>]) -> (Verdict, Verdict) {
    let limits = Limits::default();
    (
        check_ops(model, h, &limits, Strategy::Auto).verdict,
        check_ops(model, h, &limits, Strategy::Search).verdict,
    )
}

use RegisterOp::*;

#[test]
fn stale_read_is_invalid() {
    let h = ops(&[(Write(1), 0, Some(1)), (Read(None), 2, Some(3))]);
    assert_eq!(
        verdicts(&Register::read_write(), &h),
        (Verdict::Invalid, Verdict::Invalid)
    );
}

#[test]
fn concurrent_read_may_see_either_value() {
    for seen in [None, Some(1)] {
        let h = ops(&[(Write(1), 0, Some(3)), (Read(seen), 1, Some(2))]);
        assert_eq!(
            verdicts(&Register::read_write(), &h),
            (Verdict::Valid, Verdict::Valid)
        );
    }
}

#[test]
fn info_write_may_take_effect_late_or_never() {
    // write 1 crashes; a later read sees 1; a read after that sees 1 again.
    let h = ops(&[
        (Write(1), 0, None),
        (Read(Some(1)), 5, Some(6)),
        (Read(Some(1)), 7, Some(8)),
    ]);
    assert_eq!(
        verdicts(&Register::read_write(), &h),
        (Verdict::Valid, Verdict::Valid)
    );
    let h = ops(&[(Write(1), 0, None), (Read(None), 5, Some(6))]);
    assert_eq!(
        verdicts(&Register::read_write(), &h),
        (Verdict::Valid, Verdict::Valid)
    );
    // Once seen, it cannot be unseen.
    let h = ops(&[
        (Write(1), 0, None),
        (Read(Some(1)), 5, Some(6)),
        (Read(None), 7, Some(8)),
    ]);
    assert_eq!(
        verdicts(&Register::read_write(), &h),
        (Verdict::Invalid, Verdict::Invalid)
    );
}

#[test]
fn cas_chain_and_double_cas() {
    let m = Register::cas_register();
    let cas = |e: i64, n: i64| Cas {
        expect: Some(e),
        new: n,
        known: true,
    };
    let h = ops(&[
        (Write(1), 0, Some(1)),
        (cas(1, 2), 2, Some(3)),
        (Read(Some(2)), 4, Some(5)),
    ]);
    assert_eq!(verdicts(&m, &h), (Verdict::Valid, Verdict::Valid));
    let h = ops(&[
        (Write(1), 0, Some(1)),
        (cas(1, 2), 2, Some(5)),
        (cas(1, 3), 3, Some(4)),
    ]);
    assert_eq!(verdicts(&m, &h), (Verdict::Invalid, Verdict::Invalid));
}

#[test]
fn counterexample_names_the_failing_op() {
    let h = ops(&[
        (Write(1), 0, Some(1)),
        (Write(2), 2, Some(3)),
        (Read(Some(1)), 4, Some(5)),
    ]);
    let r = check_ops(
        &Register::read_write(),
        &h,
        &Limits::default(),
        Strategy::Search,
    );
    assert_eq!(r.verdict, Verdict::Invalid);
    let cex = r.counterexample.expect("a counterexample");
    assert_eq!(cex.prefix_len, 2);
    assert_eq!(cex.failed_op.expect("failed op").invoke_index, 4);
    assert_eq!(cex.states, vec!["2".to_string()]);
}

#[test]
fn memory_budget_yields_unknown() {
    // Many concurrent writes and no ordering constraints: the memo must grow.
    let mut spec = Vec::new();
    for i in 0..14 {
        spec.push((Write(i), i as u64, Some(100 + i as u64)));
    }
    spec.push((Read(Some(99)), 50, Some(60))); // impossible; the search must explore everything.
    let h = ops(&spec);
    let limits = Limits::new(None, 10_000);
    let r = check_ops(&Register::read_write(), &h, &limits, Strategy::Search);
    assert_eq!(r.verdict, Verdict::Unknown);
    let p = r.progress.expect("progress");
    assert_eq!(p.stopped_by, "memory budget used up");
    assert_eq!(p.ops, 15);
}
