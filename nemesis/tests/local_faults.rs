//! Faults on real local clusters (network namespaces, real sshd, real iptables and tc):
//! partitions stop exactly the traffic their grudge names and heal restores it, without
//! touching the user's own rules; pause and kill show in the node's process table and heal
//! undoes them; clock faults are refused on nodes that share this machine's kernel. (Packet
//! faults are tested in harness/tests/netem.rs, which has the faultline binary they upload.)
//! They need root: built without it, they are listed as ignored (CI runs them as root).

use clusters::testing::{require_root, run, HostClock};
use clusters::{local, Cluster, ClusterFile, RemoteCommand};
use nemesis::clock::ClockBumpFault;
use nemesis::partition::PartitionFaultSpec;
use nemesis::process::{KillFault, KillSpec, PauseFault, PauseSpec};
use nemesis::{
    seeded, Fault, FaultSpec, Grudge, Journal, NemesisError, ProcessHooks, Targets, Topology,
};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

static SERIAL: Mutex<()> = Mutex::new(());

fn cluster(name: &str, n: usize) -> Cluster {
    let _ = local::down(name);
    let path = local::up(n, name).expect("cluster up");
    Cluster::new(ClusterFile::load(&path).expect("cluster file"), 4)
}

/// Which ordered pairs (a, b) can open a TCP connection from a to b's sshd.
fn reachability(
    cluster: &Cluster,
    addrs: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> BTreeMap<(String, String), bool> {
    let nodes = cluster.nodes();
    let mut out = BTreeMap::new();
    for r in cluster.on_nodes(&nodes, |a| {
        let mut script = String::new();
        for b in nodes.iter().filter(|b| *b != a) {
            let ip = addrs[b][0];
            script.push_str(&format!(
                "if timeout 1 bash -c '</dev/tcp/{ip}/22' 2>/dev/null; then echo {b} ok; else echo {b} cut; fi\n"
            ));
        }
        cluster.exec(a, &RemoteCommand::script(script))
    }) {
        let text = r.result.expect("exec").stdout_text();
        for line in text.lines() {
            let mut w = line.split_whitespace();
            let (b, v) = (w.next().unwrap_or_default(), w.next().unwrap_or_default());
            out.insert((r.node.clone(), b.to_string()), v == "ok");
        }
    }
    out
}

/// TCP needs packets both ways: a reaches b iff neither drops the other.
fn expected(grudge: &Grudge, nodes: &[String]) -> BTreeMap<(String, String), bool> {
    let mut out = BTreeMap::new();
    for a in nodes {
        for b in nodes.iter().filter(|b| *b != a) {
            out.insert(
                (a.clone(), b.clone()),
                !grudge.drops(a, b) && !grudge.drops(b, a),
            );
        }
    }
    out
}

fn all_connected(nodes: &[String]) -> BTreeMap<(String, String), bool> {
    expected(&Grudge::default(), nodes)
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn partitions_cut_exactly_the_grudge_and_heal_restores_it() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cluster = cluster("t-part", 5);
    let nodes = cluster.nodes();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(&dir.path().join("nemesis.jsonl")).unwrap();
    let nem = nemesis::Nemesis::new(&cluster, journal);
    let addrs = nem.addresses().unwrap();
    assert_eq!(reachability(&cluster, &addrs), all_connected(&nodes));

    // A rule of the user's own, which heal must leave alone.
    run(
        &cluster,
        "n1",
        "iptables -w -A INPUT -s 10.9.9.9/32 -j DROP",
    );

    let mut rng = seeded(5);
    for topology in [
        Topology::Isolate("n2".into()),
        Topology::Halves,
        Topology::MajoritiesRing,
        Topology::Bridge,
        Topology::MinorityThird,
    ] {
        let spec = FaultSpec::Partition(PartitionFaultSpec {
            partition: nemesis::fault::PartitionSpec::Topology(topology.clone()),
        });
        let fault = nem.resolve(&spec, &mut rng).unwrap();
        let Fault::Partition(p) = &fault else {
            panic!("not a partition")
        };
        let grudge = p.grudge.clone();
        nem.apply(fault).unwrap();
        assert_eq!(
            reachability(&cluster, &addrs),
            expected(&grudge, &nodes),
            "{topology}: {grudge}"
        );
        // The controller still reaches every node.
        assert_eq!(
            cluster
                .exec_all(&RemoteCommand::new("true"))
                .iter()
                .filter(|r| r.result.is_ok())
                .count(),
            5
        );
    }
    // Only the last partition is pending: each one replaced the one before.
    assert_eq!(nem.journal().pending().unwrap().len(), 1);

    let report = nem.heal_all(false).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.healed.len(), 1);
    assert!(nem.journal().pending().unwrap().is_empty());
    assert_eq!(reachability(&cluster, &addrs), all_connected(&nodes));
    let rules = run(&cluster, "n1", "iptables -w -S");
    assert!(rules.contains("-A INPUT -s 10.9.9.9/32 -j DROP"), "{rules}");
    assert!(!rules.contains("FAULTLINE"), "{rules}");
    // Heal is idempotent.
    assert!(nem.heal_all(true).unwrap().is_clean());
    local::down("t-part").unwrap();
}

/// A stand-in database: `sleep` processes started with a pid file in the node's private /tmp.
struct SleepDb;

impl ProcessHooks for SleepDb {
    fn name(&self) -> &str {
        "sleepdb"
    }
    fn pids(&self, cluster: &Cluster, node: &str) -> Result<Vec<u32>, NemesisError> {
        let out = cluster.exec(
            node,
            &RemoteCommand::script(
                "p=$(cat /tmp/sleepdb.pid 2>/dev/null) && kill -0 \"$p\" 2>/dev/null && echo \"$p\"; true",
            ),
        )?;
        Ok(out
            .stdout_text()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect())
    }
    fn start(&self, cluster: &Cluster, node: &str) -> Result<(), NemesisError> {
        cluster.exec(
            node,
            &RemoteCommand::script(
                "setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo $! > /tmp/sleepdb.pid",
            ),
        )?;
        Ok(())
    }
    fn primaries(&self, _: &Cluster) -> Result<Vec<String>, NemesisError> {
        Ok(vec!["n1".into()])
    }
}

fn state(cluster: &Cluster, node: &str, pid: u32) -> String {
    run(cluster, node, &format!("ps -o stat= -p {pid} || echo gone"))
        .trim()
        .to_string()
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn pause_and_kill_show_in_the_process_table_and_heal_undoes_them() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cluster = cluster("t-proc", 3);
    let dir = tempfile::tempdir().unwrap();
    let nem = nemesis::Nemesis::new(
        &cluster,
        Journal::open(&dir.path().join("nemesis.jsonl")).unwrap(),
    )
    .with_hooks(Arc::new(SleepDb));
    for n in cluster.nodes() {
        SleepDb.start(&cluster, &n).unwrap();
    }
    let pid = |n: &str| SleepDb.pids(&cluster, n).unwrap()[0];
    let p1 = pid("n1");

    // Pause the primary: its process is stopped (T), the others are not.
    let f = nem
        .resolve(
            &FaultSpec::Pause(PauseSpec {
                targets: Targets::Primaries,
            }),
            &mut seeded(2),
        )
        .unwrap();
    assert_eq!(
        f,
        Fault::Pause(PauseFault {
            db: "sleepdb".into(),
            nodes: vec!["n1".into()]
        })
    );
    let paused = nem.apply(f).unwrap();
    assert!(
        state(&cluster, "n1", p1).starts_with('T'),
        "{}",
        state(&cluster, "n1", p1)
    );
    assert!(state(&cluster, "n2", pid("n2")).starts_with('S'));
    nem.heal(&paused).unwrap();
    assert!(state(&cluster, "n1", p1).starts_with('S'));

    // Kill two nodes: their processes are gone; heal starts new ones.
    let f = Fault::Kill(KillFault {
        db: "sleepdb".into(),
        nodes: vec!["n2".into(), "n3".into()],
    });
    let (p2, p3) = (pid("n2"), pid("n3"));
    nem.apply(f.clone()).unwrap();
    assert_eq!(state(&cluster, "n2", p2), "gone");
    assert_eq!(state(&cluster, "n3", p3), "gone");
    assert!(SleepDb.pids(&cluster, "n2").unwrap().is_empty());
    // Killing a database that is not running is refused and not journaled.
    let e = nem.apply(f).unwrap_err().to_string();
    assert!(e.contains("not running on n2, n3"), "{e}");
    assert!(nem.heal_all(false).unwrap().is_clean());
    assert!(state(&cluster, "n2", pid("n2")).starts_with('S'));
    assert!(nem.journal().pending().unwrap().is_empty());
    local::down("t-proc").unwrap();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn process_faults_target_the_nodes_where_the_database_runs() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cluster = cluster("t-runs", 3);
    let dir = tempfile::tempdir().unwrap();
    let nem = nemesis::Nemesis::new(
        &cluster,
        Journal::open(&dir.path().join("nemesis.jsonl")).unwrap(),
    )
    .with_hooks(Arc::new(SleepDb));
    // The database runs on n1 only (as PostgreSQL's primary without replicas does).
    SleepDb.start(&cluster, "n1").unwrap();
    let kill = |targets: Targets, seed: u64| {
        nem.resolve(&FaultSpec::Kill(KillSpec { targets }), &mut seeded(seed))
    };
    let on_n1 = Fault::Kill(KillFault {
        db: "sleepdb".into(),
        nodes: vec!["n1".into()],
    });
    // Random and whole-cluster targets resolve among the nodes where it runs.
    for seed in 0..5 {
        for t in [
            Targets::One,
            Targets::Minority,
            Targets::Majority,
            Targets::All,
        ] {
            assert_eq!(kill(t.clone(), seed).unwrap(), on_n1, "{t} seed {seed}");
        }
    }
    // Named nodes without it are left out; only a fault with none left is refused.
    assert_eq!(
        kill(Targets::Nodes(vec!["n1".into(), "n3".into()]), 0).unwrap(),
        on_n1
    );
    let e = kill(Targets::Nodes(vec!["n2".into()]), 0).unwrap_err();
    assert!(matches!(e, NemesisError::Refused(_)), "{e}");
    assert!(e.to_string().contains("not running on n2"), "{e}");
    // The fault lands, and heal starts the database where it was, not elsewhere.
    let p1 = SleepDb.pids(&cluster, "n1").unwrap()[0];
    nem.apply(kill(Targets::All, 1).unwrap()).unwrap();
    assert_eq!(state(&cluster, "n1", p1), "gone");
    assert!(nem.heal_all(false).unwrap().is_clean());
    assert_eq!(SleepDb.pids(&cluster, "n1").unwrap().len(), 1);
    assert!(SleepDb.pids(&cluster, "n2").unwrap().is_empty());
    // With it running nowhere, the fault is refused and says so.
    let p1 = SleepDb.pids(&cluster, "n1").unwrap()[0];
    run(&cluster, "n1", &format!("kill -9 {p1}"));
    let e = kill(Targets::All, 0).unwrap_err();
    assert!(e.to_string().contains("not running on any node"), "{e}");
    local::down("t-runs").unwrap();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_panic_mid_partition_still_heals() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cluster = cluster("t-panic", 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nemesis.jsonl");
    let nodes = cluster.nodes();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let nem = nemesis::Nemesis::new(&cluster, Journal::open(&path).unwrap());
        let _heal = nem.heal_on_drop();
        let f = nem
            .resolve(
                &FaultSpec::Partition(PartitionFaultSpec {
                    partition: nemesis::fault::PartitionSpec::Topology(Topology::Halves),
                }),
                &mut seeded(0),
            )
            .unwrap();
        nem.apply(f).unwrap();
        panic!("the run fails mid-partition");
    }));
    assert!(result.is_err());
    let nem = nemesis::Nemesis::new(&cluster, Journal::open(&path).unwrap());
    assert!(nem.journal().pending().unwrap().is_empty());
    let addrs = nem.addresses().unwrap();
    assert_eq!(reachability(&cluster, &addrs), all_connected(&nodes));
    local::down("t-panic").unwrap();
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn clock_faults_are_refused_on_nodes_sharing_this_kernel() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cluster = cluster("t-clock", 2);
    let dir = tempfile::tempdir().unwrap();
    let nem = nemesis::Nemesis::new(
        &cluster,
        Journal::open(&dir.path().join("nemesis.jsonl")).unwrap(),
    );
    let host = HostClock::start();
    let e = nem
        .apply(Fault::ClockBump(ClockBumpFault {
            nodes: vec!["n1".into()],
            by_ms: 3_600_000,
        }))
        .unwrap_err();
    assert!(matches!(e, NemesisError::Refused(_)), "{e}");
    assert!(
        e.to_string().contains("shares this machine's kernel"),
        "{e}"
    );
    host.assert_unmoved(Duration::from_secs(1));
    assert!(nem.journal().pending().unwrap().is_empty());
    local::down("t-clock").unwrap();
}

/// With the controller's journal lost, heal used to say "nothing to heal" while the database
/// stayed stopped on one node and dead on another. What undoes a pause or a kill is also kept
/// on the node itself, and heal's sweep finds it there.
#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces, sshd")]
fn heal_without_the_journal_resumes_and_restarts_from_records_on_the_nodes() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let cluster = cluster("t-lost", 3);
    for n in cluster.nodes() {
        SleepDb.start(&cluster, &n).unwrap();
    }
    let pid = |n: &str| SleepDb.pids(&cluster, n).unwrap()[0];
    let (p1, p2) = (pid("n1"), pid("n2"));
    let dir = tempfile::tempdir().unwrap();
    let lost = dir.path().join("lost.jsonl");
    {
        let nem = nemesis::Nemesis::new(&cluster, Journal::open(&lost).unwrap())
            .with_hooks(Arc::new(SleepDb));
        nem.apply(Fault::Pause(PauseFault {
            db: "sleepdb".into(),
            nodes: vec!["n1".into()],
        }))
        .unwrap();
        nem.apply(Fault::Kill(KillFault {
            db: "sleepdb".into(),
            nodes: vec!["n2".into()],
        }))
        .unwrap();
        let spec = FaultSpec::Partition(PartitionFaultSpec {
            partition: nemesis::fault::PartitionSpec::Topology(Topology::Isolate("n3".into())),
        });
        let f = nem.resolve(&spec, &mut seeded(0)).unwrap();
        nem.apply(f).unwrap();
    }
    assert!(state(&cluster, "n1", p1).starts_with('T'));
    assert_eq!(state(&cluster, "n2", p2), "gone");
    std::fs::remove_file(&lost).unwrap();

    // A new journal knows nothing; the sweep finds all three faults on the nodes.
    let nem = nemesis::Nemesis::new(
        &cluster,
        Journal::open(&dir.path().join("new.jsonl")).unwrap(),
    )
    .with_hooks(Arc::new(SleepDb));
    let report = nem.heal_all(true).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(report.healed.is_empty());
    let found = |n: &str| report.swept.get(n).cloned().unwrap_or_default().join("\n");
    assert!(
        found("n1").contains(&format!("resume (SIGCONT) PIDs {p1} on n1")),
        "{report:?}"
    );
    assert!(found("n2").contains("start sleepdb"), "{report:?}");
    assert!(found("n3").contains("partition rules"), "{report:?}");
    assert!(state(&cluster, "n1", p1).starts_with('S'));
    assert!(state(&cluster, "n2", pid("n2")).starts_with('S'));
    let addrs = nem.addresses().unwrap();
    assert_eq!(
        reachability(&cluster, &addrs),
        all_connected(&cluster.nodes())
    );
    // Nothing is left to find.
    let again = nem.heal_all(true).unwrap();
    assert!(again.is_clean() && again.swept.is_empty(), "{again:?}");
    local::down("t-lost").unwrap();
}
