//! `faultline bench-store`: a store of fake but well-formed runs (test.yaml made by the real
//! plan code, results.json with a verdict, anomalies and test power), indexed, to measure and
//! test `serve` on many runs. 24 configurations (etcd, two read modes, three workloads, four
//! fault mixes) take turns, one run a minute; linearizable reads are valid but for the
//! newest run of one configuration (a regression), serializable reads are invalid about one
//! run in three but never on their newest run (flaky), and a few runs are unknown or weak.

use crate::cli::{BenchStoreArgs, TestArgs};
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::index::Index;
use crate::plan::TestPlan;
use anyhow::Context;
use clap::Parser;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

/// The read modes, workloads and fault mixes whose product is the configurations.
const MODES: [&str; 2] = ["linearizable", "serializable"];
const WORKLOADS: [&str; 3] = ["register", "cas-register", "set"];
const FAULTS: [&str; 4] = ["partition", "kill", "partition,kill", "none"];

/// Makes the store and prints how long it took.
pub fn run(args: &BenchStoreArgs) -> Result<Exit, Failure> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.store)
        .map_err(|e| bad_input(anyhow::anyhow!("{}: {e}", args.store.display())))?;
    generate(&args.store, args.runs).map_err(internal)?;
    let made = started.elapsed();
    let (runs, skipped) = Index::open(&args.store)
        .and_then(|mut i| i.rebuild())
        .map_err(internal)?;
    println!(
        "{runs} runs in {} ({} not indexed): made in {:.1} s, indexed in {:.1} s",
        args.store.display(),
        skipped.len(),
        made.as_secs_f64(),
        (started.elapsed() - made).as_secs_f64()
    );
    Ok(Exit::Valid)
}

/// The plan of each configuration, in turn order.
fn plans() -> anyhow::Result<Vec<TestPlan>> {
    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        t: TestArgs,
    }
    let registry = workloads::Registry::builtin();
    let mut out = Vec::new();
    for mode in MODES {
        for workload in WORKLOADS {
            for faults in FAULTS {
                let args = Wrap::try_parse_from([
                    "faultline",
                    "--cluster",
                    "local:3",
                    "--db",
                    "etcd",
                    "--workload",
                    workload,
                    "--nemesis",
                    faults,
                    "--read-mode",
                    mode,
                    "--time-limit",
                    "60s",
                ])?
                .t;
                out.push(crate::plan::make(&args, &registry, 0)?.plan);
            }
        }
    }
    Ok(out)
}

/// Writes `runs` runs into `store`, the newest now.
pub fn generate(store: &Path, runs: u64) -> anyhow::Result<()> {
    let plans = plans()?;
    let configs = plans.len() as u64;
    let now = SystemTime::now();
    for i in 0..runs {
        let c = (i % configs) as usize;
        let mut plan = plans[c].clone();
        plan.seed = i / configs + 1;
        let start = now - Duration::from_secs(60 * (runs - i));
        plan.started = humantime::format_rfc3339_seconds(start).to_string();
        let stamp: String = plan
            .started
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .collect();
        let dir = store.join(&plan.name).join(stamp.trim_end_matches('Z'));
        std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
        let newest_of_config = i + configs >= runs;
        let results = results(
            c,
            i,
            MODES[c / (WORKLOADS.len() * FAULTS.len())],
            newest_of_config,
        );
        let end = start + Duration::from_secs(62);
        for (file, text) in [
            ("test.yaml", crate::yaml_text::to_string(&plan)?),
            ("results.json", results.to_string()),
        ] {
            let path = dir.join(file);
            std::fs::write(&path, text).with_context(|| format!("{}", path.display()))?;
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(end))
                .with_context(|| format!("{}", path.display()))?;
        }
    }
    Ok(())
}

/// The results.json of run `i` of configuration `c` with read mode `mode`.
fn results(c: usize, i: u64, mode: &str, newest: bool) -> serde_json::Value {
    // A cheap, fixed mix of the run's number.
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
    let valid = match mode {
        "linearizable" => !(newest && c == 0),
        // Flaky, but never ending in a regression: the newest run is valid.
        _ => newest || !h.is_multiple_of(3),
    };
    let unknown = valid && c != 0 && h % 97 == 1;
    let weak: Vec<&str> = if valid && h % 19 == 2 {
        vec!["no partition fault applied"]
    } else {
        vec![]
    };
    let ok = 3000 + h % 2000;
    serde_json::json!({
        "checker": "linearizable",
        "valid": if unknown { serde_json::json!("unknown") } else { serde_json::json!(valid) },
        "summary": if valid { "linearizable".to_string() } else { format!("key {} is not linearizable", h % 10) },
        "anomalies": if valid { vec![] } else { vec![serde_json::json!({"key": h % 10})] },
        "power": {
            "concurrency": {"workers": 6, "mean_in_flight": 5.2, "p99_in_flight": 6},
            "faults": {"partition": {"scheduled": 5, "applied": 5 - h % 2, "refused": 0, "skipped": h % 2}},
            "availability": {"ok": ok, "ok_per_second": ok as f64 / 60.0, "unavailable": [], "recoveries": [], "duration": 60.0},
            "weak": weak,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_store_indexes_every_run_with_one_regression() {
        let store = tempfile::tempdir().expect("tempdir");
        generate(store.path(), 100).expect("generate");
        let mut index = Index::open(store.path()).expect("index");
        let (runs, skipped) = index.rebuild().expect("rebuild");
        assert_eq!((runs, skipped.len()), (100, 0));
        let rows = index.rows().expect("rows");
        let trends = crate::index::trends::trends(rows, 3);
        assert_eq!(trends.len(), 24);
        use crate::index::trends::Class;
        assert_eq!(trends[0].class, Class::Regression, "{:?}", trends[0].config);
        let linearizable: Vec<_> = trends
            .iter()
            .filter(|t| t.config.contains("read-mode=linearizable"))
            .map(|t| t.class)
            .collect();
        assert_eq!(linearizable.len(), 12);
        assert_eq!(linearizable[0], Class::Regression);
        assert!(linearizable[1..].iter().all(|c| *c == Class::Steady));
        assert!(trends.iter().any(|t| t.class == Class::Flaky));
    }
}
