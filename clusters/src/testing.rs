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
use std::time::{Duration, Instant, SystemTime};

/// Panics unless this process has `need`. A test marked ignored where the build lacked `need`
/// calls this first, so that it fails, rather than passing without testing, when it runs
/// without it anyway (`--include-ignored`, a build made as another user, or `CI` set).
pub fn require(need: Need) {
    assert!(
        need.met(),
        "this test needs {}. It was not marked ignored because it was built where that need \
         was met, or with CI set; run it where it is met, or rebuild here without CI to have \
         it listed as ignored",
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

/// This machine's wall clock against its monotonic clock since [`HostClock::start`]: tests that
/// apply clock faults check with it that this machine's own clock did not move.
pub struct HostClock {
    wall: SystemTime,
    mono: Instant,
}

impl HostClock {
    /// Starts measuring now.
    pub fn start() -> Self {
        HostClock {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// How far the wall clock moved beyond the monotonic time elapsed since the start, in
    /// seconds: positive when it jumped forward, negative when it jumped back.
    pub fn moved_secs(&self) -> f64 {
        let mono = self.mono.elapsed().as_secs_f64();
        let wall = match SystemTime::now().duration_since(self.wall) {
            Ok(d) => d.as_secs_f64(),
            Err(back) => -back.duration().as_secs_f64(),
        };
        wall - mono
    }

    /// Panics unless the wall clock kept within `tolerance` of the monotonic clock, either way.
    pub fn assert_unmoved(&self, tolerance: Duration) {
        let moved = self.moved_secs();
        assert!(
            moved.abs() <= tolerance.as_secs_f64(),
            "this machine's clock moved by {moved:+.3} s"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "this machine's clock moved by -5")]
    fn a_wall_clock_that_went_back_is_caught() {
        // As if the wall clock jumped back 5 s right after the start.
        let clock = HostClock {
            wall: SystemTime::now() + Duration::from_secs(5),
            mono: Instant::now(),
        };
        clock.assert_unmoved(Duration::from_secs(1));
    }

    #[test]
    fn a_clock_left_alone_has_not_moved() {
        let clock = HostClock::start();
        std::thread::sleep(Duration::from_millis(20));
        assert!(clock.moved_secs().abs() < 0.01, "{}", clock.moved_secs());
        clock.assert_unmoved(Duration::from_secs(1));
    }
}
