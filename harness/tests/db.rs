//! `faultline db` end to end on a real local cluster with real etcd: a database set up by
//! hand (install, start, status), killed by `faultline nemesis kill --db etcd` and restarted
//! by `faultline heal`, stopped and wiped; every change journaled, and refused while another
//! faultline process holds the cluster. They need root: built without it, they are listed
//! as ignored (CI runs them as root).

use clusters::testing::{home, require_root};
use std::process::Stdio;
use std::time::{Duration, Instant};
mod common;
use common::{cmd, db_journal, faultline, text, Cluster};

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables), etcd"
)]
fn etcd_by_hand_then_killed_and_healed_by_hand() {
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-db-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    let db = |action: &str| faultline(h, &["db", action, "--cluster", c, "--db", "etcd"]);

    let out = db("status");
    assert_eq!(out.status.code(), Some(1), "nothing runs yet");
    assert!(text(&out.stdout).contains("n1: etcd not running"));
    let out = faultline(
        h,
        &[
            "db",
            "install",
            "--cluster",
            c,
            "--db",
            "etcd",
            "--read-mode",
            "serializable",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let out = db("start");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout).matches("etcd started").count(), 3);
    let out = db("status");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout).matches("answering").count(), 3);

    // The fault that used to answer "etcd is not running".
    let out = faultline(
        h,
        &[
            "nemesis",
            "--cluster",
            c,
            "kill",
            "--db",
            "etcd",
            "--nodes",
            "n1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = db("status");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("n1: etcd not running"));
    let out = faultline(h, &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(30);
    while db("status").status.code() != Some(0) {
        assert!(Instant::now() < deadline, "heal did not restart etcd on n1");
        std::thread::sleep(Duration::from_millis(500));
    }

    // Refused while another faultline process holds the cluster.
    let mut held = cmd(
        h,
        &[
            "nemesis",
            "--cluster",
            c,
            "--hold",
            "120s",
            "partition",
            "--isolate",
            "n3",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("nemesis --hold");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = faultline(h, &["nemesis", "--cluster", c, "status"]);
        if text(&s.stdout).contains(&format!("held by pid {} ", held.id())) {
            break;
        }
        assert!(Instant::now() < deadline, "the lease was never taken");
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = db("stop");
    let _ = held.kill();
    let _ = held.wait();
    assert_eq!(out.status.code(), Some(254), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("pid {} ", held.id())),
        "{}",
        text(&out.stderr)
    );
    let out = faultline(h, &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    let out = db("stop");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(db("status").status.code(), Some(1));
    let out = db("wipe");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));

    // Journaled: each change, begin and done, with the options install resolved.
    let lines = db_journal(h, &name);
    let actions: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            (
                l["action"].as_str().unwrap_or_default().to_string(),
                l["event"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let want: Vec<(String, String)> = ["install", "start", "stop", "wipe"]
        .iter()
        .flat_map(|a| {
            [
                (a.to_string(), "begin".into()),
                (a.to_string(), "done".into()),
            ]
        })
        .collect();
    assert_eq!(actions, want);
    // start, given no options, used those install recorded.
    assert_eq!(lines[2]["options"]["read-mode"], "serializable");
}
