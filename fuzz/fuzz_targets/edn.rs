//! Fuzzes the edn reader, the validator and the op builder with arbitrary bytes: any input
//! must give events or an error, never a panic or a hang.
#![no_main]

use checkers::linear::{check_keys, CheckOptions, Limits, OpsBuilder};
use checkers::model::Register;
use checkers::read::{from_reader, Format, Validator};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(reader) = from_reader(std::io::Cursor::new(data.to_vec()), "fuzz", Format::Edn) else {
        return;
    };
    let model = Register::cas_register();
    let mut validator = Validator::new("fuzz");
    let mut builder = OpsBuilder::new(&model, "fuzz");
    for located in reader {
        let Ok(located) = located else { return };
        if validator.check(&located).is_err() {
            return;
        }
        if builder
            .push(&located.event, located.line, located.f_column, located.value_column)
            .is_err()
        {
            return;
        }
    }
    let Ok((by_key, _)) = builder.finish() else { return };
    // Small budgets: the fuzzer looks for crashes in the checker too, not for hard histories.
    let options = CheckOptions {
        limits: Limits::new(Some(std::time::Duration::from_millis(200)), 16 << 20),
        ..CheckOptions::default()
    };
    let _ = check_keys(&model, &by_key, &options);
});
