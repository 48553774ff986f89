//! The operator commands as a user runs them, on a real local cluster (network namespaces,
//! sshd, iptables): `faultline exec`, `faultline nemesis` and `faultline heal`, including a
//! controller killed with SIGKILL while it holds a partition. They need root: built
//! without it, they are listed as ignored (CI runs them as root).

use clusters::testing::{home, require_root};
use std::path::Path;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};
mod common;
use common::{cmd, faultline, text, Cluster};

static SERIAL: Mutex<()> = Mutex::new(());

/// The output of `faultline exec` split into (node, lines) groups.
fn groups(stdout: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in stdout.lines() {
        if let Some(h) = line.strip_prefix("== ") {
            out.push((
                h.split(' ').next().unwrap_or_default().to_string(),
                Vec::new(),
            ));
        } else if let Some(last) = out.last_mut() {
            last.1.push(line.to_string());
        }
    }
    out
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn exec_runs_everywhere_names_failures_and_passes_arguments_literally() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let cluster = Cluster::up(home.path(), "t-exec-cli", 3);
    let c = cluster.file.clone();
    let c = c.to_str().unwrap();

    let out = faultline(home.path(), &["exec", "--cluster", c, "--", "hostname"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let g = groups(&text(&out.stdout));
    assert_eq!(
        g,
        ["n1", "n2", "n3"].map(|n| (n.to_string(), vec![n.to_string()]))
    );

    // One node fails: the exit code is 1 and the node is named.
    let out = faultline(
        home.path(),
        &[
            "exec",
            "--cluster",
            c,
            "--",
            "sh",
            "-c",
            "test \"$(hostname)\" != n2",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("n2 (exit 1)") && !err.contains("n1"), "{err}");

    // Hostile arguments arrive unchanged, one argument each.
    let hostile = [
        "$(id)", "a b", "'q'", ";", "*", "`x`", "\\", "\"", "&& false",
    ];
    let mut args = vec![
        "exec",
        "--cluster",
        c,
        "--node",
        "n3",
        "--",
        "printf",
        "[%s]\\n",
    ];
    args.extend(hostile);
    let out = faultline(home.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let g = groups(&text(&out.stdout));
    assert_eq!(g.len(), 1);
    let want: Vec<String> = hostile.iter().map(|h| format!("[{h}]")).collect();
    assert_eq!(g[0].1, want);

    // A node that does not exist is bad usage.
    let out = faultline(
        home.path(),
        &["exec", "--cluster", c, "--node", "n9", "--", "true"],
    );
    assert_eq!(out.status.code(), Some(254));
    faultline(home.path(), &["cluster", "down", "--name", "t-exec-cli"]);
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_partition_survives_a_killed_controller_and_heal_restores_it() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let home = home();
    let cluster = Cluster::up(home.path(), "t-heal-cli", 3);
    let c = cluster.file.clone();
    let c = c.to_str().unwrap();
    let n2 = node_address(home.path(), c, "n2");
    let probe = format!("timeout 1 bash -c '</dev/tcp/{n2}/22'");
    let reach = |node: &str| {
        faultline(
            home.path(),
            &[
                "exec",
                "--cluster",
                c,
                "--node",
                node,
                "--",
                "bash",
                "-c",
                &probe,
            ],
        )
        .status
        .code()
            == Some(0)
    };
    assert!(reach("n1") && reach("n3"));

    // A controller holds a partition, and is killed with SIGKILL while it does.
    let mut child = cmd(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            c,
            "--hold",
            "10m",
            "partition",
            "--isolate",
            "n2",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let st = text(&faultline(home.path(), &["nemesis", "--cluster", c, "status"]).stdout);
        if st.contains("#1 applied since") {
            assert!(st.contains("isolate n2"), "{st}");
            break;
        }
        assert!(Instant::now() < deadline, "the partition was never applied");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();

    assert!(!reach("n1") && !reach("n3"), "n2 must be cut off");
    // A damaged line in the middle of the journal (a disk error, a stray edit) is skipped
    // with a warning naming it; it used to stop status and heal ("line 3: expected value").
    let journal = home.path().join("journal/t-heal-cli.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&journal)
        .expect("journal")
        .lines()
        .map(String::from)
        .collect();
    lines.insert(1, "{\"time\": garbage".into());
    std::fs::write(&journal, lines.join("\n") + "\n").expect("write journal");
    let out = faultline(home.path(), &["nemesis", "--cluster", c, "status"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("#1 applied"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("skipping line 2"),
        "{}",
        text(&out.stderr)
    );

    let out = faultline(home.path(), &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("healed #1"));
    assert!(reach("n1") && reach("n3"));
    let st = text(&faultline(home.path(), &["nemesis", "--cluster", c, "status"]).stdout);
    assert!(st.contains("no faults applied"), "{st}");
    // Idempotent.
    let out = faultline(home.path(), &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0));

    // With the journal lost, heal still finds and removes the partition, and says so.
    let out = faultline(
        home.path(),
        &["nemesis", "--cluster", c, "partition", "--isolate", "n2"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!reach("n1"));
    std::fs::remove_file(&journal).expect("lose the journal");
    std::fs::remove_file(journal.with_extension("cluster.json")).expect("and its owner");
    let out = faultline(home.path(), &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let said = text(&out.stderr);
    assert!(
        said.contains("sweep: n2: removed partition rules"),
        "{said}"
    );
    assert!(!said.contains("nothing to heal"), "{said}");
    assert!(reach("n1") && reach("n3"));

    // A cluster file with the same name and other nodes is another cluster: it does not get
    // this cluster's journal (its heal would undo this cluster's faults on its own nodes).
    let mut other = clusters::ClusterFile::load(Path::new(c)).expect("cluster file");
    other.nodes.pop();
    let other_path = home.path().join("other.yaml");
    std::fs::write(&other_path, other.to_yaml()).expect("write cluster file");
    let out = faultline(
        home.path(),
        &["heal", "--cluster", other_path.to_str().expect("utf-8")],
    );
    assert_eq!(out.status.code(), Some(254), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("belongs to cluster \"t-heal-cli\" (n1 at "),
        "{}",
        text(&out.stderr)
    );

    // The journal goes with its cluster: a new cluster of that name starts afresh.
    let out = faultline(home.path(), &["cluster", "down", "--name", "t-heal-cli"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !journal.exists(),
        "the journal must be retired with its cluster"
    );
    let retired = std::fs::read_dir(home.path().join("journal/retired"))
        .expect("retired journals")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        })
        .count();
    assert_eq!(retired, 1);
}

/// A node's address on the cluster network, asked through `faultline exec`.
fn node_address(home: &Path, c: &str, node: &str) -> String {
    let out = faultline(
        home,
        &[
            "exec",
            "--cluster",
            c,
            "--node",
            node,
            "--",
            "hostname",
            "-I",
        ],
    );
    let g = groups(&text(&out.stdout));
    g[0].1[0]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}
