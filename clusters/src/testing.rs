//! Helpers for tests that bring up local clusters (feature `testing`, which the workspace's
//! crates enable for their own tests only).
//!
//! Tests that need root or Chromium are marked ignored where the build lacks it, never passed:
//! the crate's build script (see [`needs`]) sets `not_root` / `no_chromium`, and such a test
//! carries `#[cfg_attr(not_root, ignore = "needs root: ...")]` and starts with
//! [`require_root`] (or [`require_chromium`]), which panics if the need is missing after all.

pub mod needs;

pub use needs::{chromium, Need};

use crate::{Cluster, RemoteCommand};

/// Panics unless this process has `need`. A test marked ignored where the build lacked `need`
/// calls this first, so that it fails, rather than passing without testing, when it runs
/// without it anyway (`--include-ignored`, a build made as another user, or `CI` set).
pub fn require(need: Need) {
    assert!(
        need.met(),
        "this test needs {}; build and run it where it has that (cargo test then marks it \
         ignored where it has not)",
        need.describe()
    );
}

/// [`require`] root: for tests that make network namespaces, start sshd or change iptables.
pub fn require_root() {
    require(Need::Root);
}

/// [`require`] Chromium, and its path.
pub fn require_chromium() -> &'static str {
    require(Need::Chromium);
    chromium().expect("Chromium was just found")
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
