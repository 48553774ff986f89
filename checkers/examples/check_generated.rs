//! Checks a generated cas-register history in-process and prints how long each phase took:
//! `cargo run --release -p checkers --example check_generated -- OPS KEYS PROCESSES CRASH [search]`

use checkers::generate::{GenOptions, Generator};
use checkers::linear::{check_keys, CheckOptions, OpsBuilder, Strategy};
use checkers::model::Register;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (ops, keys, processes, crash) = (
        arg(1, 1e6) as u64,
        arg(2, 1000.0) as u64,
        arg(3, 10.0) as u64,
        arg(4, 0.01),
    );
    let search = args.get(5).is_some_and(|s| s == "search");
    let model = Register::cas_register();
    let t = Instant::now();
    let mut b = OpsBuilder::new(&model, "generated");
    let opts = GenOptions {
        ops,
        ops_per_key: ops.div_ceil(keys),
        processes,
        crash_rate: crash,
        ..GenOptions::default()
    };
    for (i, ev) in Generator::new(opts).enumerate() {
        if let Err(e) = b.push(&ev, i as u64 + 1, 1, 1) {
            eprintln!("{e}");
            return;
        }
    }
    let Ok((by_key, _)) = b.finish() else { return };
    println!(
        "generated and built {} keys in {:?}",
        by_key.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let options = CheckOptions {
        strategy: if search {
            Strategy::Search
        } else {
            Strategy::Auto
        },
        ..CheckOptions::default()
    };
    let r = check_keys(&model, &by_key, &options);
    println!(
        "{:?}: {} ops, {} keys ({} fast, {} search), peak memo {} MiB, in {:?}",
        r.valid,
        r.ops,
        r.keys,
        r.fast_path_keys,
        r.search_keys,
        r.peak_memo_bytes >> 20,
        t.elapsed()
    );
}
