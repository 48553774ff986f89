//! Clock faults on real guests: `faultline cluster up --local 3 --vm` (qemu guests with their
//! own kernels and clocks), then a bump shows on that guest's clock and on no other guest's nor
//! this machine's, a strobe moves a clock back and forth, reset brings every clock within
//! 100 ms of this machine's, time synchronisation (systemd-timesyncd) is stopped on a node
//! for the length of a clock fault and runs again after reset, and `down` leaves no qemu
//! process, tap device or overlay. Then an etcd test with clock, partition and kill faults on
//! three guests completes and is checked.
//! They need root (built without it, they are listed as ignored) and qemu (scripts/install-deps
//! installs it) and take about ten minutes on a 2-core machine: the guest image is built once
//! and cached in /var/lib/faultline/images, and guests run under TCG where KVM does not work.
//! CI runs them; `cargo test -p harness --test vm` alone runs them by hand.

use checkers::Verdict;
use clusters::testing::{home, require_root, HostClock};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod common;
use common::{cmd, results, run_echoed, text};

static SERIAL: Mutex<()> = Mutex::new(());

/// `faultline ARGS` with the guest images cached where every test finds them.
fn faultline(home: &Path, args: &[&str]) -> Output {
    let mut c = cmd(home, args);
    c.env("FAULTLINE_IMAGES", "/var/lib/faultline/images");
    run_echoed(c, args)
}

/// Each node's clock minus this machine's, in milliseconds, measured on the node against a
/// time server here: bash's $EPOCHREALTIME around one TCP exchange (no process started in
/// between), seven times, keeping the exchange with the shortest round trip, whose midpoint
/// error is at most half that round trip. On a loaded machine a single exchange can take
/// hundreds of milliseconds; the shortest of seven rarely does.
fn offsets(home: &Path, c: &str, port: u16) -> Vec<(String, f64)> {
    let script = format!(
        "ip=${{SSH_CLIENT%% *}}; exec 3<>/dev/tcp/$ip/{port}; for i in 1 2 3 4 5 6 7; do t1=$EPOCHREALTIME; printf x >&3; read -r h <&3; t2=$EPOCHREALTIME; echo \"$t1 $h $t2\"; done"
    );
    let o = faultline(home, &["exec", "--cluster", c, "--", "bash", "-c", &script]);
    let mut best: Vec<(String, f64, f64)> = Vec::new();
    let mut node = String::new();
    for line in text(&o.stdout).lines() {
        if let Some(h) = line.strip_prefix("== ") {
            node = h.split(' ').next().unwrap_or_default().to_string();
            continue;
        }
        let v: Vec<f64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if v.len() == 3 {
            let rtt_ms = (v[2] - v[0]) * 1e3;
            let off = (v[0] + v[2]) / 2.0 * 1e3 - v[1] / 1e6;
            match best.iter_mut().find(|(n, _, _)| *n == node) {
                Some(b) if rtt_ms < b.2 => *b = (node.clone(), off, rtt_ms),
                Some(_) => {}
                None => best.push((node.clone(), off, rtt_ms)),
            }
        }
    }
    assert_eq!(best.len(), 3, "{}", text(&o.stdout));
    eprintln!("offsets (ms, best round trip ms): {best:?}");
    best.into_iter().map(|(n, off, _)| (n, off)).collect()
}

/// Each node's state of systemd-timesyncd (`active`, `inactive`, ...), in node order.
fn timesyncd(home: &Path, c: &str) -> Vec<String> {
    let o = faultline(
        home,
        &[
            "exec",
            "--cluster",
            c,
            "--",
            "systemctl",
            "is-active",
            "systemd-timesyncd",
        ],
    );
    let states: Vec<String> = text(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with("== ") && !l.trim().is_empty())
        .map(|l| l.trim().to_string())
        .collect();
    assert_eq!(states.len(), 3, "{}", text(&o.stdout));
    states
}

/// Removes a cluster however the test ends.
struct Down<'a>(&'a Path, &'a str);
impl Drop for Down<'_> {
    fn drop(&mut self) {
        faultline(self.0, &["cluster", "down", "--name", self.1]);
    }
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: qemu guests on tap devices")]
fn clock_faults_move_exactly_the_chosen_guests_clock() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let _down = Down(home.path(), "t-vm");
    let t = Instant::now();
    let up = faultline(
        home.path(),
        &["cluster", "up", "--local", "3", "--vm", "--name", "t-vm"],
    );
    assert!(up.status.success());
    eprintln!("up took {:.1} s", t.elapsed().as_secs_f64());
    let c = PathBuf::from(text(&up.stdout).trim());
    let c = c.to_str().unwrap();
    let host = HostClock::start();
    let server = nemesis::clock::TimeServer::start().expect("time server");
    let port = server.port();

    // Each guest has its own kernel: the boot ids differ from each other and from ours.
    let ids = text(
        &faultline(
            home.path(),
            &[
                "exec",
                "--cluster",
                c,
                "--",
                "cat",
                "/proc/sys/kernel/random/boot_id",
            ],
        )
        .stdout,
    );
    let mine = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap();
    assert!(!ids.contains(mine.trim()), "{ids}");

    let base = offsets(home.path(), c, port);
    // The guests synchronise time as real hosts do; a clock fault stops that on its nodes.
    assert_eq!(timesyncd(home.path(), c), ["active", "active", "active"]);
    // Bump n1 by +30 s: only n1 moves.
    let o = faultline(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            c,
            "clock",
            "bump",
            "--nodes",
            "n1",
            "--by",
            "30s",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(timesyncd(home.path(), c), ["inactive", "active", "active"]);
    // Guests boot up to a second or so away from this machine (the emulated RTC counts whole
    // seconds), so the bump is judged against each guest's own offset before it.
    let off = offsets(home.path(), c, port);
    let moved: Vec<f64> = off.iter().zip(&base).map(|(a, b)| a.1 - b.1).collect();
    assert!((moved[0] - 30_000.0).abs() < 2_000.0, "{moved:?}");
    assert!(
        moved[1].abs() < 500.0 && moved[2].abs() < 500.0,
        "{moved:?}"
    );
    // Back by -30 s on n1 gives roughly zero again.
    faultline(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            c,
            "clock",
            "bump",
            "--nodes",
            "n1",
            "--by",
            "-30s",
        ],
    );
    let off = offsets(home.path(), c, port);
    assert!((off[0].1 - base[0].1).abs() < 2_000.0, "{off:?}");

    // Strobe n2 by 10 s every 300 ms (for longer than the samples take, however slowly the
    // fault is applied; the reset below stops it): samples see both positions.
    faultline(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            c,
            "clock",
            "strobe",
            "--nodes",
            "n2",
            "--delta",
            "10s",
            "--period",
            "300ms",
            "--for",
            "120s",
        ],
    );
    let (mut ahead, mut near) = (0, 0);
    for _ in 0..8 {
        let off = offsets(home.path(), c, port);
        if off[1].1 > 5_000.0 {
            ahead += 1;
        } else if off[1].1.abs() < 5_000.0 {
            near += 1;
        }
        std::thread::sleep(Duration::from_millis(170));
    }
    assert!(
        ahead >= 1 && near >= 1,
        "strobe: {ahead} ahead, {near} near"
    );

    // Reset: every guest within 100 ms of this machine.
    let o = faultline(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            c,
            "clock",
            "reset",
            "--nodes",
            "all",
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    std::thread::sleep(Duration::from_millis(200));
    for (n, ms) in offsets(home.path(), c, port) {
        assert!(ms.abs() < 100.0, "{n} is {ms:.1} ms off after reset");
    }
    // Time synchronisation runs again where the faults stopped it.
    assert_eq!(timesyncd(home.path(), c), ["active", "active", "active"]);
    // This machine's clock never moved (wall time advanced as much as monotonic time).
    host.assert_unmoved(Duration::from_secs(1));
    let st = text(&faultline(home.path(), &["nemesis", "--cluster", c, "status"]).stdout);
    assert!(st.contains("no faults applied"), "{st}");

    // With the journal lost, heal still undoes what faultline did on the guests, from the
    // records they keep: a clock bump's stopped time sync, and a partition.
    let o = faultline(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            c,
            "clock",
            "bump",
            "--nodes",
            "n3",
            "--by",
            "20s",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = faultline(
        home.path(),
        &["nemesis", "--cluster", c, "partition", "--isolate", "n2"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(timesyncd(home.path(), c), ["active", "active", "inactive"]);
    let journal = home.path().join("journal/t-vm.jsonl");
    std::fs::remove_file(&journal).expect("lose the journal");
    std::fs::remove_file(journal.with_extension("cluster.json")).expect("and its owner");
    let o = faultline(home.path(), &["heal", "--cluster", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let said = text(&o.stderr);
    assert!(
        said.contains("sweep: n2: removed partition rules"),
        "{said}"
    );
    assert!(said.contains("sweep: n3: undid"), "{said}");
    assert!(!said.contains("nothing to heal"), "{said}");
    assert_eq!(timesyncd(home.path(), c), ["active", "active", "active"]);
    // The sweep finds nothing more: a second heal is a no-op.
    let o = faultline(home.path(), &["heal", "--cluster", c]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(!text(&o.stderr).contains("removed partition rules"));

    // down leaves no qemu process, tap or overlay.
    let o = faultline(home.path(), &["cluster", "down", "--name", "t-vm"]);
    assert!(o.status.success());
    let ps = text(
        &Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!ps.contains("faultline-t-vm-"), "{ps}");
    let links = text(
        &Command::new("ip")
            .args(["-o", "link"])
            .output()
            .unwrap()
            .stdout,
    );
    assert!(!links.contains("flt"), "{links}");
    assert!(!home.path().join("clusters/t-vm").exists());
}

#[test]
#[cfg_attr(not_root, ignore = "needs root: qemu guests on tap devices")]
fn etcd_on_guests_with_clock_partition_and_kill_faults_is_checked() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let t = Instant::now();
    let store = home.path().join("store");
    let out = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            "local:3",
            "--vm",
            "--nemesis",
            "clock,partition,kill",
            "--nemesis-interval",
            "4s",
            "--time-limit",
            "40s",
            "--rate",
            "50",
            "--op-timeout",
            "3s",
            "--seed",
            "6",
            "--store",
            store.to_str().unwrap(),
        ],
    );
    eprintln!("the whole test took {:.1} s", t.elapsed().as_secs_f64());
    // etcd's reads are linearizable by default (read index, not leases), whatever the clocks
    // do: the run completes, is checked, and is valid, and what it stored says the same.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let run = common::latest_in(&store);
    let results = results(&run);
    assert_eq!(results.head.valid, Verdict::Valid, "{results:#?}");
    assert!(
        results.details["ops"].as_u64().is_some_and(|n| n > 0),
        "no op was checked: {results:#?}"
    );
    // What the stored schedule holds, not what a seed is assumed to produce, and not
    // whether the machine was idle: every step that starts a fault ends in the history as
    // applied (start-KIND), refused or skipped (fault-refused, fault-skipped, with why), and
    // at least one fault was applied.
    let plan = harness::plan::PlanFile::load(&run.join("test.yaml")).expect("test.yaml");
    let schedule = plan.schedule().expect("the stored schedule").clone();
    let starts = schedule
        .steps
        .iter()
        .filter(|s| matches!(s.action, nemesis::schedule::Action::Start { .. }))
        .count();
    assert!(starts > 0, "{schedule:?}");
    let history = std::fs::read_to_string(run.join("history.jsonl")).unwrap();
    let events: Vec<serde_json::Value> = history
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|e: &serde_json::Value| e["process"] == "nemesis")
        .collect();
    let f = |e: &serde_json::Value| e["f"].as_str().unwrap_or_default().to_string();
    let applied = events.iter().filter(|e| f(e).starts_with("start-")).count();
    let not_applied: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| {
            (f(e) == "fault-skipped" || f(e) == "fault-refused")
                && e["value"]["step"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("start-"))
        })
        .collect();
    assert_eq!(
        applied + not_applied.len(),
        starts,
        "a scheduled fault went missing: {events:#?}"
    );
    assert!(applied > 0, "no fault was applied: {events:#?}");
    for e in not_applied {
        assert!(
            e["error"].as_str().is_some_and(|w| !w.is_empty()),
            "a step not taken says why: {e}"
        );
    }
    assert!(run.join("results.json").exists() && run.join("report.html").exists());
}
