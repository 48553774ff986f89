//! `faultline check` on every file of Porcupine's test data: each verdict must match
//! ../shared/data/porcupine/MANIFEST.md, with no unknown.

use std::path::{Path, PathBuf};
mod common;

fn data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/porcupine");
    assert!(
        dir.is_dir(),
        "the shared test data is missing: expected {}",
        dir.display()
    );
    dir
}

/// Exit code of `faultline check --model MODEL FILE`.
fn check(model: &str, file: &Path) -> i32 {
    let file = file.to_str().expect("a UTF-8 path");
    let out = common::cmd_stateless(&["check", "--model", model, file])
        .output()
        .expect("run faultline");
    out.status.code().expect("exit code")
}

#[test]
fn jepsen_etcd_logs_match_porcupine() {
    // MANIFEST.md: these 13 are linearizable, the other 47 are not.
    let valid = [2, 5, 7, 18, 25, 31, 38, 45, 48, 49, 51, 53, 56];
    for n in 0..60 {
        let file = data().join(format!("jepsen/etcd_{n:03}.log"));
        let want = if valid.contains(&n) { 0 } else { 1 };
        assert_eq!(check("cas-register", &file), want, "{}", file.display());
    }
}

#[test]
fn kv_files_match_porcupine() {
    for (name, want) in [
        ("c01-ok", 0),
        ("c01-bad", 1),
        ("c10-ok", 0),
        ("c10-bad", 1),
        ("c50-ok", 0),
        ("c50-bad", 1),
    ] {
        let file = data().join(format!("kv/{name}.txt"));
        assert_eq!(check("kv", &file), want, "{}", file.display());
    }
}
