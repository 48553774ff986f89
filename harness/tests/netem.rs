//! Packet faults on a real local cluster: delay where asked (all traffic, or only towards
//! chosen nodes), loss, heal removing every trace, and a user's own qdisc left alone. On a
//! kernel without sch_netem (like this machine's) the user-space emulator does the work; on
//! one with it, tc netem does. They need root: built
//! without it, they are listed as ignored (CI runs them as root).

mod common;
use clusters::testing::{require_root, run};
use clusters::{local, Cluster, ClusterFile};
use nemesis::netem::{NetemFault, NetemFaultSpec};
use nemesis::{seeded, Fault, FaultSpec, Journal, Nemesis, NetemSpec, Targets};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// Milliseconds a TCP connect from `from` to `ip` takes, measured on the node.
fn connect_ms(cluster: &Cluster, from: &str, ip: Ipv4Addr) -> u64 {
    let script = format!(
        "s=$(date +%s%N); bash -c '</dev/tcp/{ip}/22'; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))"
    );
    let mut best = u64::MAX;
    for _ in 0..3 {
        let ms = run(cluster, from, &script)
            .trim()
            .parse()
            .unwrap_or(u64::MAX);
        best = best.min(ms);
    }
    best
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, tc)"
)]
fn netem_adds_delay_where_asked_and_heal_removes_it() {
    require_root();
    let _ = local::down("t-netem");
    let path = local::up(3, "t-netem").expect("cluster up");
    let cluster = Cluster::new(ClusterFile::load(&path).expect("cluster file"), 4);
    let dir = tempfile::tempdir().unwrap();
    let nem = Nemesis::new(
        &cluster,
        Journal::open(&dir.path().join("nemesis.jsonl")).unwrap(),
    )
    .with_helper(PathBuf::from(common::FAULTLINE));
    let addrs = nem.addresses().unwrap();
    let (a2, a3) = (addrs["n2"][0], addrs["n3"][0]);
    let base = connect_ms(&cluster, "n1", a2);
    assert!(base < 60, "baseline connect {base} ms");

    let delay = NetemSpec {
        delay: Some(Duration::from_millis(150)),
        ..NetemSpec::default()
    };
    // Only n1's packets to n3 are delayed.
    let f = nem
        .resolve(
            &FaultSpec::Netem(NetemFaultSpec {
                targets: Targets::parse("n1"),
                to: Some(Targets::parse("n3")),
                spec: delay.clone(),
            }),
            &mut seeded(1),
        )
        .unwrap();
    let applied = nem.apply(f).unwrap();
    let to3 = connect_ms(&cluster, "n1", a3);
    let to2 = connect_ms(&cluster, "n1", a2);
    assert!(to3 >= 140, "n1 -> n3 with 150 ms delay: {to3} ms");
    assert!(to2 < 60, "n1 -> n2 must not be delayed: {to2} ms");
    nem.heal(&applied).unwrap();
    assert!(connect_ms(&cluster, "n1", a3) < 60);

    // All of n1's traffic.
    let f = nem
        .resolve(
            &FaultSpec::Netem(NetemFaultSpec {
                targets: Targets::parse("n1"),
                to: None,
                spec: delay,
            }),
            &mut seeded(1),
        )
        .unwrap();
    nem.apply(f).unwrap();
    assert!(connect_ms(&cluster, "n1", a2) >= 140);
    assert!(connect_ms(&cluster, "n1", a3) >= 140);
    assert!(nem.heal_all(false).unwrap().is_clean());
    assert!(connect_ms(&cluster, "n1", a2) < 60);
    assert_no_traces(&cluster, "n1");

    // Loss: with every packet to n3 lost, n1 cannot connect to it, but still to n2.
    let f = nem
        .resolve(
            &FaultSpec::Netem(NetemFaultSpec {
                targets: Targets::parse("n1"),
                to: Some(Targets::parse("n3")),
                spec: NetemSpec {
                    loss: Some(100.0),
                    ..NetemSpec::default()
                },
            }),
            &mut seeded(1),
        )
        .unwrap();
    nem.apply(f).unwrap();
    let probe =
        |ip: Ipv4Addr| format!("timeout 1 bash -c '</dev/tcp/{ip}/22' && echo ok || echo cut");
    assert_eq!(run(&cluster, "n1", &probe(a3)).trim(), "cut");
    assert_eq!(run(&cluster, "n1", &probe(a2)).trim(), "ok");
    // The controller keeps its hold on the node.
    run(&cluster, "n1", "true");
    assert!(nem.heal_all(true).unwrap().is_clean());
    assert_eq!(run(&cluster, "n1", &probe(a3)).trim(), "ok");
    assert_no_traces(&cluster, "n1");

    // A root qdisc of the user's own is never replaced.
    run(&cluster, "n2", "tc qdisc add dev eth0 root handle 1: pfifo");
    let f = Fault::Netem(NetemFault {
        nodes: vec!["n2".into()],
        to: vec![],
        spec: NetemSpec {
            loss: Some(10.0),
            ..NetemSpec::default()
        },
    });
    let e = nem.apply(f).unwrap_err().to_string();
    assert!(e.contains("someone else"), "{e}");
    assert!(nem.journal().pending().unwrap().is_empty());
    let qdisc = run(&cluster, "n2", "tc qdisc show dev eth0 root");
    assert!(qdisc.contains("pfifo 1:"), "{qdisc}");
    run(&cluster, "n2", "tc qdisc del dev eth0 root");
    local::down("t-netem").unwrap();
}

/// No faultline qdisc, chain or emulator is left on the node.
fn assert_no_traces(cluster: &Cluster, node: &str) {
    let qdisc = run(cluster, node, "tc qdisc show dev eth0 root");
    assert!(!qdisc.contains("fa17"), "{qdisc}");
    let rules = run(cluster, node, "iptables -w -S");
    assert!(!rules.contains("FAULTLINE"), "{rules}");
    let ps = run(cluster, node, "ps -e -o args=");
    assert!(!ps.contains("netem-queue"), "{ps}");
}
