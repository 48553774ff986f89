//! Fuzzes the transactional readers (history.jsonl and EDN, list-append and rw-register), their
//! validation and the transactional checker with arbitrary bytes: any input must give a
//! verdict or an error, never a panic or a hang. The first byte picks the model and format.
#![no_main]

use checkers::read::{from_reader, Format, Validator};
use checkers::txn::{check, Budget, Consistency, TxnBuilder, TxnModel};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let model = if selector & 1 == 0 {
        TxnModel::ListAppend
    } else {
        TxnModel::RwRegister
    };
    let format = if selector & 2 == 0 { Format::Jsonl } else { Format::Edn };
    let consistency = Consistency::ALL[(selector as usize >> 2) % Consistency::ALL.len()];
    let Ok(reader) = from_reader(std::io::Cursor::new(rest.to_vec()), "fuzz", format) else {
        return;
    };
    let mut validator = Validator::new("fuzz");
    let mut builder = TxnBuilder::new(model, "fuzz");
    for located in reader {
        let Ok(located) = located else { return };
        if validator.check(&located).is_err() || builder.push(&located).is_err() {
            return;
        }
    }
    let Ok(history) = builder.finish() else { return };
    // Small budgets: the fuzzer looks for crashes, not for hard histories.
    let budget = Budget {
        time: Some(std::time::Duration::from_millis(200)),
        steps: 100_000,
        memo_entries: 100_000,
        memory: 256 << 20,
    };
    let _ = check(&history, consistency, &budget);
});
