//! What the harness's end-to-end tests share: running the `faultline` binary with its own
//! `FAULTLINE_HOME`, and bringing up a temporary local cluster. Each test binary uses a part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// `faultline ARGS` with `FAULTLINE_HOME` set to `home`, not yet run.
pub fn cmd(home: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_faultline"));
    c.args(args).env("FAULTLINE_HOME", home);
    c
}

/// Runs `faultline ARGS` with `FAULTLINE_HOME` set to `home`; echoes the command and its output
/// to the test's stderr, which the test harness shows when the test fails.
pub fn faultline(home: &Path, args: &[&str]) -> Output {
    let out = cmd(home, args).output().expect("run faultline");
    eprintln!(
        "$ faultline {}\n{}{}",
        args.join(" "),
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Output bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Brings up local cluster `name` of `n` nodes under `home` (taking down one left by an
/// earlier run first) and returns its cluster file.
pub fn up(home: &Path, name: &str, n: usize) -> PathBuf {
    let _ = faultline(home, &["cluster", "down", "--name", name]);
    let out = faultline(
        home,
        &["cluster", "up", "--local", &n.to_string(), "--name", name],
    );
    assert!(out.status.success(), "up: {}", text(&out.stderr));
    PathBuf::from(text(&out.stdout).trim())
}
