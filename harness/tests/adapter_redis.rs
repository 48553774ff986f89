//! The Redis-with-Sentinel example (examples/redis-sentinel) end to end on a local cluster:
//! replicas follow the primary, sentinels watch it, the adapter (Debian's python3-redis) finds
//! it through them, and without faults nothing is lost. How often partitions make it lose
//! acknowledged writes is measured over seeds by scripts/redis-lost-writes, not claimed here.
//! Root only.

use checkers::Verdict;
use clusters::testing::{home, require_root};
use std::path::Path;
mod common;
use common::{faultline_stored, latest, read, results};

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn redis_with_sentinel_serves_the_set_workload_through_its_adapter() {
    require_root();
    let home = home();
    let def = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/redis-sentinel/redis.yaml");
    let def = def.to_str().expect("a UTF-8 path");
    let out = faultline_stored(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--db",
            def,
            "--workload",
            "set",
            "--nemesis",
            "none",
            "--time-limit",
            "8s",
            "--seed",
            "1",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let run = latest(home.path());
    let results = results(&run);
    assert_eq!(results.head.valid, Verdict::Valid, "{results:?}");
    assert_eq!(
        results.details["lost"],
        serde_json::json!([]),
        "{results:?}"
    );
    // Every node ran redis and a sentinel, and their logs were collected.
    for n in ["n1", "n2", "n3"] {
        let sentinel = read(run.join(format!("nodes/{n}/sentinel.log")));
        assert!(
            sentinel.contains("+monitor master mymaster"),
            "{n}: {sentinel}"
        );
        assert!(run.join(format!("nodes/{n}/redis.log")).is_file());
    }
    // The adapter found the primary (n1) through the sentinels.
    let stderr = read(run.join("adapters/1.stderr"));
    assert!(stderr.contains("primary now 10."), "{stderr}");
}
