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

/// Holds a list-append history to "no acknowledged append is lost": every `ok` read of a key
/// holds every element whose append was acknowledged before the read was invoked (kills
/// included). Returns how many (append, later read) pairs were checked, and how many of them
/// spanned a kill (a `start-kill` between the acknowledgement and the read's invoke).
pub fn assert_no_acknowledged_append_lost(history: &str) -> (usize, usize) {
    use std::collections::HashMap;
    // Per key: (element, history position of its acknowledgement).
    let mut acked: HashMap<String, Vec<(i64, usize)>> = HashMap::new();
    let mut invoked_at: HashMap<u64, usize> = HashMap::new();
    let mut kills: Vec<usize> = Vec::new();
    let (mut checked, mut spanning) = (0, 0);
    for (pos, line) in history.lines().enumerate() {
        let e: serde_json::Value = serde_json::from_str(line).expect("a history line");
        if e["process"] == "nemesis" {
            if e["f"] == "start-kill" {
                kills.push(pos);
            }
            continue;
        }
        let Some(process) = e["process"].as_u64() else {
            continue;
        };
        match e["type"].as_str() {
            Some("invoke") => {
                invoked_at.insert(process, pos);
            }
            Some("ok") => {
                let start = invoked_at[&process];
                for m in e["value"].as_array().expect("micro-ops") {
                    let key = m[1].to_string();
                    match m[0].as_str() {
                        Some("append") => acked
                            .entry(key)
                            .or_default()
                            .push((m[2].as_i64().expect("element"), pos)),
                        Some("r") => {
                            let seen: Vec<i64> = m[2]
                                .as_array()
                                .map(|l| l.iter().filter_map(|x| x.as_i64()).collect())
                                .unwrap_or_default();
                            for (x, at) in acked.get(&key).into_iter().flatten() {
                                if *at < start {
                                    checked += 1;
                                    assert!(
                                        seen.contains(x),
                                        "element {x} of key {key}, acknowledged at line {}, is missing from the read at line {}: {seen:?}",
                                        at + 1,
                                        pos + 1
                                    );
                                    if kills.iter().any(|k| at < k && *k < start) {
                                        spanning += 1;
                                    }
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    (checked, spanning)
}

/// Runs `cmd` to completion with its stdout and stderr captured, and returns its output with
/// its peak resident set size in KiB (the kernel's `ru_maxrss` of that child alone, from
/// `wait4`).
// The child is reaped by wait4 (which std's wait cannot report rusage from).
#[allow(clippy::zombie_processes)]
pub fn run_measured(mut cmd: Command) -> (Output, u64) {
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (mut out, mut err) = (
        child.stdout.take().expect("stdout"),
        child.stderr.take().expect("stderr"),
    );
    // Drain both pipes while the child runs, so that it never blocks on a full one.
    let err_reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let mut stdout = Vec::new();
    let _ = out.read_to_end(&mut stdout);
    let stderr = err_reader.join().expect("stderr reader");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value of that plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child's pid, with valid pointers to locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t, "wait4");
    (
        Output {
            status: std::process::ExitStatus::from_raw(status),
            stdout,
            stderr,
        },
        usage.ru_maxrss as u64,
    )
}
