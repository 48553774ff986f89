//! A stable-toolchain stand-in for the `txn` fuzz target: generated transactional histories
//! with random bytes changed, read and checked; every input must give a verdict or an input
//! error, never a panic.

use checkers::history::write_jsonl;
use checkers::txn::generate::{generate, Executor, TxnGenOptions};
use checkers::txn::{check, parse, Budget, Consistency, TxnModel};

#[test]
fn mutated_histories_give_a_verdict_or_an_error() {
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut rand = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let budget = Budget {
        time: Some(std::time::Duration::from_millis(100)),
        steps: 20_000,
        memo_entries: 20_000,
        memory: 256 << 20,
    };
    let (mut errors, mut verdicts) = (0, 0);
    for round in 0..600u64 {
        let model = if round % 2 == 0 {
            TxnModel::ListAppend
        } else {
            TxnModel::RwRegister
        };
        let mut text = Vec::new();
        let o = TxnGenOptions {
            model,
            txns: 12,
            processes: 3,
            keys: 3,
            executor: [
                Executor::Serial,
                Executor::SnapshotIsolation,
                Executor::ReadCommitted,
                Executor::StaleReplica,
            ][(round % 4) as usize],
            crash_rate: 0.1,
            seed: round,
            ..TxnGenOptions::default()
        };
        generate(&o, |e| write_jsonl(&mut text, &e).expect("write"));
        for _ in 0..(1 + rand() % 4) {
            let i = (rand() % text.len() as u64) as usize;
            text[i] = b"[]{},:\"0123456789-anr\n x"[(rand() % 24) as usize];
        }
        let text = String::from_utf8_lossy(&text).into_owned();
        match parse::from_text(model, "mutated", &text) {
            Err(e) => {
                assert!(e.to_string().starts_with("mutated:"), "{e}");
                errors += 1;
            }
            Ok(h) => {
                let _ = check(&h, Consistency::ALL[(round % 5) as usize], &budget);
                verdicts += 1;
            }
        }
    }
    assert!(
        errors > 0 && verdicts > 0,
        "{errors} errors, {verdicts} verdicts"
    );
}
