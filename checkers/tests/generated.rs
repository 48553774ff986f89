//! Generated register histories: valid ones must be judged valid by both the fast path and the
//! search; with stale reads, both must agree on every key.

use checkers::generate::{GenOptions, Generator};
use checkers::linear::{check_keys, CheckOptions, OpsBuilder, Strategy, Verdict};
use checkers::model::{Model, Register};

fn build<M: Model>(model: &M, opts: GenOptions) -> checkers::linear::OpsByKey<M::Op> {
    let mut b = OpsBuilder::new(model, "generated");
    for (i, ev) in Generator::new(opts).enumerate() {
        b.push(&ev, i as u64 + 1, 1, 1)
            .expect("generated events are well formed");
    }
    b.finish().expect("finish").0
}

fn check<M: Model>(
    model: &M,
    by_key: &checkers::linear::OpsByKey<M::Op>,
    strategy: Strategy,
) -> checkers::linear::Report {
    let options = CheckOptions {
        strategy,
        stop_at_first_invalid: false,
        ..CheckOptions::default()
    };
    check_keys(model, by_key, &options)
}

#[test]
fn generated_linearizable_histories_are_valid() {
    for (cas, seed) in [(true, 1), (false, 2), (true, 3)] {
        let model = if cas {
            Register::cas_register()
        } else {
            Register::read_write()
        };
        let opts = GenOptions {
            ops: 4000,
            ops_per_key: 200,
            processes: 6,
            crash_rate: 0.05,
            cas,
            seed,
            ..GenOptions::default()
        };
        let by_key = build(&model, opts);
        assert_eq!(by_key.len(), 20);
        let fast = check(&model, &by_key, Strategy::Auto);
        assert_eq!(fast.valid, Verdict::Valid, "{:?}", fast.anomalies);
        assert_eq!(fast.fast_path_keys, 20);
        let search = check(&model, &by_key, Strategy::Search);
        assert_eq!(search.valid, Verdict::Valid, "{:?}", search.anomalies);
    }
}

#[test]
fn stale_reads_are_found_and_both_strategies_agree_per_key() {
    let mut invalid_keys = 0;
    for seed in 0..6 {
        let model = Register::cas_register();
        let opts = GenOptions {
            ops: 1500,
            ops_per_key: 50,
            processes: 5,
            crash_rate: 0.03,
            stale_read_rate: 0.02,
            seed,
            ..GenOptions::default()
        };
        let by_key = build(&model, opts);
        let fast = check(&model, &by_key, Strategy::Auto);
        let search = check(&model, &by_key, Strategy::Search);
        assert!(search.undecided.is_empty());
        let keys = |r: &checkers::linear::Report| {
            r.anomalies
                .iter()
                .map(|a| a.key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(&fast), keys(&search), "seed {seed}");
        invalid_keys += fast.anomalies.len();
        for a in &search.anomalies {
            assert!(a.result.counterexample.is_some());
        }
    }
    assert!(
        invalid_keys > 10,
        "stale reads should make many keys invalid, got {invalid_keys}"
    );
}
