//! Helpers for tests that bring up local clusters (feature `testing`, which the workspace's
//! crates enable for their own tests only).

use crate::{Cluster, RemoteCommand};

/// Whether this process runs as root; when not, says that `what` are skipped (they need
/// network namespaces, sshd and iptables; CI runs them as root).
pub fn is_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if !root {
        eprintln!("SKIPPED: {what} need root");
    }
    root
}

/// A fresh state directory for one test under /var/tmp/faultline-tests: not under /tmp,
/// /run or /root, which local nodes see private copies of. Removed when dropped.
pub fn home() -> tempfile::TempDir {
    let base = std::path::Path::new("/var/tmp/faultline-tests");
    std::fs::create_dir_all(base).expect("mkdir /var/tmp/faultline-tests");
    tempfile::tempdir_in(base).expect("tempdir")
}

/// Runs `script` on `node` and returns its stdout; panics, naming node, script and stderr,
/// unless it exits 0.
pub fn run(cluster: &Cluster, node: &str, script: &str) -> String {
    let out = cluster
        .exec(node, &RemoteCommand::script(script))
        .expect("exec");
    assert!(
        out.success(),
        "{node}: {script}: {} {}",
        out.status,
        out.stderr_text()
    );
    out.stdout_text()
}
