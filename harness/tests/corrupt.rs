//! File corruption (`--nemesis corrupt`, `faultline nemesis corrupt`, issue 25) end to end on
//! a local three-node etcd: a run with corruption on one node at a time completes with a
//! verdict, every fault on a minority with what it damaged journaled; and by hand, the bytes
//! of the file on the node are what the journal says faultline did (a zeroed range, a
//! truncation), with etcd down until `faultline heal` starts it again.
//!
//! They need root: built without it, they are listed as ignored (CI runs them as root).

use clusters::testing::{home, require_root};
use nemesis::corrupt::{CorruptFault, Damage};
use nemesis::{Fault, Kind};
use std::path::Path;
mod common;
use common::{applied, faultline, faultline_stored, journal, journal_at, latest, text, Cluster};

/// The etcd data directory on a node.
const DATA: &str = "/var/lib/faultline-db/etcd/data";

/// The corrupt faults of a journal's apply lines.
fn corruptions(entries: &[nemesis::JournalEntry]) -> Vec<CorruptFault> {
    entries
        .iter()
        .filter_map(|e| match &e.fault {
            Some(Fault::Corrupt(c)) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// Applies `faultline nemesis corrupt` on `node` with `mode`, to etcd's bbolt file; what the
/// journal says it did there.
fn corrupt_by_hand(home: &Path, cluster: &str, node: &str, mode: &str) -> Damage {
    let out = faultline(
        home,
        &[
            "nemesis",
            "--cluster",
            cluster,
            "--seed",
            "1",
            "corrupt",
            "--db",
            "etcd",
            "--nodes",
            node,
            "--mode",
            mode,
            "--files",
            "member/snap/db",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let name = Path::new(cluster)
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .expect("the cluster's name");
    let j = journal_at(&home.join(format!("journal/{name}.jsonl")));
    let last = corruptions(&j).pop().expect("a corrupt fault journaled");
    assert_eq!(last.nodes, [node]);
    let d = last
        .damage
        .get(node)
        .expect("the damage on the node")
        .clone();
    assert_eq!(d.file, "member/snap/db");
    d
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd), etcd"
)]
fn corruption_of_one_etcd_replica_is_done_as_journaled_and_a_run_has_a_verdict() {
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-corrupt-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.arg().to_string();

    // A run: corruption on one node at a time (a minority of three), each journaled with
    // its file and where, and a verdict at the end.
    let out = faultline_stored(
        h,
        &[
            "test",
            "--cluster",
            &c,
            "--db",
            "etcd",
            "--nemesis",
            "corrupt",
            "--nemesis-interval",
            "5s",
            "--time-limit",
            "20s",
            "--seed",
            "1",
        ],
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "no verdict: {}",
        text(&out.stdout)
    );
    let run = latest(h);
    let j = journal(&run);
    assert!(applied(&j, Kind::Corrupt) >= 1, "{j:#?}");
    for f in corruptions(&j) {
        assert_eq!(f.nodes.len(), 1, "more than a minority: {f:?}");
        let keys: Vec<&String> = f.damage.keys().collect();
        assert_eq!(keys, f.nodes.iter().collect::<Vec<_>>(), "{f:?}");
    }
    assert!(
        common::read(run.join("history.jsonl")).contains("\"start-corrupt\""),
        "no start-corrupt in the history"
    );

    // By hand: the bytes on the node are what the journal says.
    for args in [
        vec!["db", "wipe", "--cluster", &c, "--db", "etcd"],
        vec!["db", "start", "--cluster", &c, "--db", "etcd"],
    ] {
        let out = faultline(h, &args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    }
    let file = format!("{DATA}/member/snap/db");
    let etcd_runs = |node: &str| common::process_runs(h, &c, node, "etcd");
    let d = corrupt_by_hand(h, &c, "n2", "zero-range");
    let (offset, len) = (d.offset.expect("offset"), d.len.expect("len"));
    let bytes = common::on_node(
        h,
        &c,
        "n2",
        &format!("od -An -tx1 -v -j {offset} -N {len} {file}"),
    );
    let bytes: Vec<&str> = bytes.split_whitespace().collect();
    assert_eq!(bytes.len() as u64, len, "{bytes:?}");
    assert!(bytes.iter().all(|b| *b == "00"), "not zeroed: {bytes:?}");
    assert!(
        !etcd_runs("n2"),
        "etcd runs on the corrupted node before heal"
    );
    assert!(etcd_runs("n1") && etcd_runs("n3"), "only n2 is touched");
    let out = faultline(h, &["heal", "--cluster", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains(&format!("member/snap/db {len} bytes zeroed from {offset}")),
        "{}",
        text(&out.stderr)
    );
    assert!(etcd_runs("n2"), "heal did not start etcd again");

    let d = corrupt_by_hand(h, &c, "n3", "truncate");
    let size = common::on_node(h, &c, "n3", &format!("stat -c %s {file}"));
    assert_eq!(size.trim(), d.len.expect("len").to_string());
    assert!(d.len < Some(d.size), "{d:?}");
    let out = faultline(h, &["heal", "--cluster", &c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}
