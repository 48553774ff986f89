//! The Redis-with-Sentinel example (examples/redis-sentinel) end to end on a local cluster:
//! replicas follow the primary, sentinels watch it, the adapter (Debian's python3-redis) finds
//! it through them, and without faults nothing is lost. How often partitions make it lose
//! acknowledged writes is measured over seeds by scripts/redis-lost-writes, not claimed here.
//! Root only.

use clusters::testing::{home, require_root};
use std::path::Path;
use std::process::Command;

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn redis_with_sentinel_serves_the_set_workload_through_its_adapter() {
    require_root();
    let home = home();
    let def = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/redis-sentinel/redis.yaml");
    let out = Command::new(env!("CARGO_BIN_EXE_faultline"))
        .args(["test", "--cluster", "local:3", "--db"])
        .arg(&def)
        .args([
            "--workload",
            "set",
            "--nemesis",
            "none",
            "--time-limit",
            "8s",
            "--seed",
            "1",
            "--store",
        ])
        .arg(home.path().join("store"))
        .env("FAULTLINE_HOME", home.path())
        .output()
        .expect("run faultline");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains(" 0 lost"), "{stdout}");
    let run = std::fs::canonicalize(home.path().join("store/latest")).unwrap();
    // Every node ran redis and a sentinel, and their logs were collected.
    for n in ["n1", "n2", "n3"] {
        let sentinel =
            std::fs::read_to_string(run.join(format!("nodes/{n}/sentinel.log"))).unwrap();
        assert!(
            sentinel.contains("+monitor master mymaster"),
            "{n}: {sentinel}"
        );
        assert!(run.join(format!("nodes/{n}/redis.log")).is_file());
    }
    // The adapter found the primary (n1) through the sentinels.
    let stderr = std::fs::read_to_string(run.join("adapters/1.stderr")).unwrap();
    assert!(stderr.contains("primary now 10."), "{stderr}");
}
