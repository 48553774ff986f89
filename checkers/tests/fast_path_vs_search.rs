//! The register fast path must agree with the exact search on random small histories whose
//! written values are distinct (reads may return anything, including unwritten values).

use checkers::generate::Rng;
use checkers::linear::{check_ops, Limits, Method, Operation, Strategy, Verdict};
use checkers::model::{Register, RegisterOp};

/// A random history: `n` ops over `procs` processes, each op invoked after its process's
/// previous op returned; some ops have unknown outcomes (and retire their process).
fn random_history(rng: &mut Rng, n: usize, procs: u64, cas: bool) -> Vec<Operation<RegisterOp>> {
    let mut ops = Vec::new();
    let mut busy_until = vec![0u64; procs as usize];
    let mut next_value = 1;
    let mut clock = 0u64;
    for _ in 0..n {
        let p = rng.below(procs) as usize;
        let call = busy_until[p].max(clock) + rng.below(3);
        let len = 1 + rng.below(6);
        let unknown = rng.chance(0.15);
        let op = match rng.below(if cas { 3 } else { 2 }) {
            0 => {
                let v = rng.below(next_value as u64 + 1) as i64;
                RegisterOp::Read(if v == 0 { None } else { Some(v) })
            }
            1 => {
                next_value += 1;
                RegisterOp::Write(next_value - 1)
            }
            _ => {
                next_value += 1;
                let e = rng.below(next_value as u64) as i64;
                RegisterOp::Cas {
                    expect: if e == 0 { None } else { Some(e) },
                    new: next_value - 1,
                    known: !unknown,
                }
            }
        };
        if unknown && matches!(op, RegisterOp::Read(_)) {
            continue; // unknown reads are dropped by the builder
        }
        clock = call;
        busy_until[p] = if unknown { u64::MAX / 4 } else { call + len };
        ops.push(Operation {
            op,
            call: call * 2,
            ret: (!unknown).then_some((call + len) * 2 + 1),
            process: p as u64,
            invoke_index: ops.len() as u64,
            complete_index: None,
        });
    }
    // Ranks must be distinct: spread ties by op position.
    let mut events: Vec<(u64, usize, bool)> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        events.push((o.call, i, true));
        if let Some(r) = o.ret {
            events.push((r, i, false));
        }
    }
    events.sort();
    for (rank, (_, i, is_call)) in events.into_iter().enumerate() {
        if is_call {
            ops[i].call = rank as u64;
        } else {
            ops[i].ret = Some(rank as u64);
        }
    }
    ops.sort_by_key(|o| o.call);
    ops
}

#[test]
fn fast_path_agrees_with_search() {
    let mut rng = Rng::new(7);
    let mut seen = [0usize; 2];
    for round in 0..20_000 {
        let cas = round % 2 == 0;
        let n = 2 + rng.below(9) as usize;
        let procs = 2 + rng.below(3);
        let h = random_history(&mut rng, n, procs, cas);
        let model = if cas {
            Register::cas_register()
        } else {
            Register::read_write()
        };
        let limits = Limits::default();
        let fast = check_ops(&model, &h, &limits, Strategy::Auto);
        let exact = check_ops(&model, &h, &limits, Strategy::Search);
        // Written values are distinct, so the fast path answers every history itself (unless
        // every op's outcome is unknown: then nothing needs checking).
        let expected = if h.iter().all(|o| !o.is_known()) {
            Method::Empty
        } else {
            Method::FastPath
        };
        assert_eq!(
            fast.method, expected,
            "round {round}: {h:#?}\nfast: {fast:?}"
        );
        assert!(
            matches!(exact.method, Method::Search | Method::Empty),
            "{exact:?}"
        );
        assert_ne!(exact.verdict, Verdict::Unknown);
        assert_eq!(
            fast.verdict, exact.verdict,
            "round {round}: {h:#?}\nfast: {fast:?}"
        );
        seen[(exact.verdict == Verdict::Valid) as usize] += 1;
    }
    assert!(
        seen[0] > 2000 && seen[1] > 2000,
        "both verdicts should be common: {seen:?}"
    );
}
