//! `faultline campaign` end to end on local clusters (root; without it, these tests are
//! listed as ignored, and CI runs them as root): a 2 × 2 etcd campaign, each cell on its own
//! temporary cluster, gives 4 runs, 4 index rows and a junit.xml of 4 test cases; shards 1/2
//! and 2/2 of a campaign, merged, give the index rows of the whole campaign.

mod common;

use clusters::testing::{home, require_root};
use common::{faultline, text};
use harness::index::{Index, RunRow};
use std::path::Path;

/// The 2 × 2 campaign of issue 26: linearizable and serializable reads, 2 seeds.
const CAMPAIGN: &str = "
name: reads
cluster: local:3
time-limit: 10s
databases: [etcd]
workloads: [register]
nemesis: [partition]
db-options:
  - {read-mode: linearizable}
  - {read-mode: serializable}
seeds: [1, 2]
test:
  nemesis-interval: 2s
  concurrency: 6
  rate: 100
";

fn rows(store: &Path) -> Vec<RunRow> {
    Index::open(store).expect("index").rows().expect("rows")
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_campaign_runs_every_cell_and_indexes_it() {
    require_root();
    let home = home();
    let file = home.path().join("reads.yaml");
    std::fs::write(&file, CAMPAIGN).expect("write");
    let store = home.path().join("store");
    let out = faultline(
        home.path(),
        &[
            "campaign",
            file.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--id",
            "reads-1",
        ],
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(0..=2)),
        "exit {code:?}: {}",
        text(&out.stderr)
    );
    let rows = rows(&store);
    assert_eq!(rows.len(), 4, "{rows:#?}");
    for r in &rows {
        assert_eq!(r.campaign.as_deref(), Some("reads-1"));
        assert!(r
            .cell
            .as_deref()
            .unwrap()
            .starts_with("etcd/register/partition/read-mode="));
        assert_ne!(r.outcome, harness::index::Outcome::None, "{r:?}");
        assert!(store.join(&r.dir).join("test.yaml").is_file());
    }
    let linearizable: Vec<_> = rows
        .iter()
        .filter(|r| r.options["read-mode"] == "linearizable")
        .collect();
    assert_eq!(linearizable.len(), 2);
    assert!(linearizable
        .iter()
        .all(|r| r.outcome == harness::index::Outcome::Valid));
    let dir = store.join("campaigns").join("reads-1");
    let junit = common::read(dir.join("junit.xml"));
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
    let invalid = rows
        .iter()
        .filter(|r| r.outcome == harness::index::Outcome::Invalid)
        .count();
    assert_eq!(junit.matches("<failure ").count(), invalid, "{junit}");
    assert_eq!(code == Some(1), invalid > 0);
    assert!(common::read(dir.join("summary.md")).contains("# Campaign reads-1"));
    // The index is the run directories': rebuilt, it is the same.
    let before = rows;
    std::fs::remove_file(store.join("index.sqlite")).expect("remove");
    let out = faultline(
        home.path(),
        &["index", "rebuild", "--store", store.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(self::rows(&store), before);
    // The cells, listed without running them.
    let out = faultline(
        home.path(),
        &[
            "campaign",
            file.to_str().unwrap(),
            "--store",
            home.path().join("store2").to_str().unwrap(),
            "--dry-run",
        ],
    );
    assert_eq!(text(&out.stdout).lines().count(), 4);
}

/// What identifies a run of a campaign, whichever machine ran it and when.
fn identity(rows: &[RunRow]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {:?} {:?} {} {} {} {} {}",
                r.test,
                r.campaign,
                r.cell,
                r.db,
                r.workload,
                r.nemesis,
                r.seed,
                r.config()
            )
        })
        .collect();
    v.sort();
    v
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn shards_merged_equal_the_whole_campaign() {
    require_root();
    let home = home();
    let cluster = common::Cluster::up(home.path(), "campaignshards", 3);
    let file = home.path().join("quick.yaml");
    let quick = CAMPAIGN
        .replace("time-limit: 10s", "time-limit: 2s")
        .replace("nemesis: [partition]", "nemesis: [none]");
    std::fs::write(&file, quick).expect("write");
    let run = |store: &str, extra: &[&str]| {
        let store = home.path().join(store);
        let mut args = vec![
            "campaign",
            file.to_str().unwrap(),
            "--cluster",
            cluster.arg(),
            "--id",
            "quick",
            "--store",
            store.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = faultline(home.path(), &args);
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{}",
            text(&out.stderr)
        );
        store
    };
    let whole = run("whole", &[]);
    let one = run("one", &["--shard", "1/2"]);
    let two = run("two", &["--shard", "2/2"]);
    assert_eq!(rows(&one).len() + rows(&two).len(), 4);
    let merged = home.path().join("merged");
    let out = faultline(
        home.path(),
        &[
            "campaign",
            "merge",
            "--store",
            merged.to_str().unwrap(),
            one.to_str().unwrap(),
            two.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(identity(&rows(&merged)), identity(&rows(&whole)));
    // The merged runs are the shards' own rows, durations included.
    let mut shard_rows = [rows(&one), rows(&two)].concat();
    shard_rows.sort_by(|a, b| (&a.started, &a.dir).cmp(&(&b.started, &b.dir)));
    assert_eq!(rows(&merged), shard_rows);
    let junit = common::read(merged.join("campaigns/quick/junit.xml"));
    assert_eq!(junit.matches("<testcase ").count(), 4, "{junit}");
    // Merging again copies nothing new.
    let out = faultline(
        home.path(),
        &[
            "campaign",
            "merge",
            "--store",
            merged.to_str().unwrap(),
            one.to_str().unwrap(),
        ],
    );
    assert!(out.status.success());
    assert_eq!(rows(&merged).len(), 4);
}
