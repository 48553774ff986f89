//! `faultline campaign` end to end on local clusters (root; without it, these tests are
//! listed as ignored, and CI runs them as root): a 2 × 2 etcd campaign, each cell on its own
//! temporary cluster, gives 4 runs, 4 index rows and a junit.xml of 4 test cases, and
//! `serve`'s trends page, in Chromium, lists its 2 configurations and 4 runs, then a
//! regression once a cell's verdict changed; shards 1/2 and 2/2 of a campaign, merged, give
//! the index rows of the whole campaign; a campaign killed with SIGKILL leaves an index that
//! opens and holds every run that finished.

mod common;

use clusters::testing::{home, require_chromium, require_root};
use common::{faultline, text};
use harness::index::{Index, Outcome, RunRow};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

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
#[cfg_attr(
    no_chromium,
    ignore = "needs Chromium (apt-get install chromium) for the trends page"
)]
fn a_campaign_runs_every_cell_and_indexes_it() {
    require_root();
    let chrome = require_chromium();
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
    trends_in_chromium(chrome, &store, &before);
}

/// `serve`'s trends page of the campaign's store, in Chromium: its 2 configurations with
/// their 4 runs; then, once a linearizable cell's newest run is invalid, that configuration
/// first, as a regression.
fn trends_in_chromium(chrome: &str, store: &Path, rows: &[RunRow]) {
    let server = common::http::serve(store, &[]);
    let url = |path: &str| format!("http://{}{path}", server.addr);
    let (dom, log) = common::http::chromium_dom(chrome, &url("/trends"));
    assert!(!log.contains("Uncaught"), "script errors: {log}");
    assert_eq!(dom.matches("<tr class=\"trend ").count(), 2, "{dom}");
    for r in rows {
        assert!(
            dom.contains(&format!("href=\"/runs/{}/\"", r.dir)),
            "{}: {dom}",
            r.dir
        );
    }
    assert!(dom.contains("read-mode=linearizable") && dom.contains("read-mode=serializable"));
    let (list, _) = common::http::chromium_dom(chrome, &url("/"));
    assert_eq!(list.matches("<tr><td>").count(), 4, "{list}");

    // A second campaign in which a linearizable cell turned invalid. Fabricated, not run: a
    // linearizable run copied as a later run of campaign reads-2 with an invalid
    // results.json (etcd's linearizable reads do not fail on demand); serve indexes the
    // new directory on its next request.
    let valid = rows
        .iter()
        .filter(|r| r.options["read-mode"] == "linearizable")
        .max_by(|a, b| a.started.cmp(&b.started))
        .expect("a linearizable run");
    let later = SystemTime::now() + Duration::from_secs(60);
    let mut plan = harness::plan::TestPlan::load(&store.join(&valid.dir)).expect("test.yaml");
    plan.started = humantime::format_rfc3339_seconds(later).to_string();
    if let Some(c) = plan.campaign.as_mut() {
        c.id = "reads-2".into();
    }
    let stamp: String = plan
        .started
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    let copy = store.join(&valid.test).join(stamp.trim_end_matches('Z'));
    std::fs::create_dir_all(&copy).expect("mkdir");
    std::fs::write(
        copy.join("test.yaml"),
        harness::yaml_text::to_string(&plan).expect("yaml"),
    )
    .expect("write");
    let mut results: serde_json::Value =
        serde_json::from_str(&common::read(store.join(&valid.dir).join("results.json")))
            .expect("results.json");
    results["valid"] = serde_json::json!(false);
    results["summary"] = serde_json::json!("fabricated: key 1 is not linearizable");
    results["anomalies"] = serde_json::json!([{"key": 1}]);
    std::fs::write(copy.join("results.json"), results.to_string()).expect("write");
    let (dom, _) = common::http::chromium_dom(chrome, &url("/trends?n=2"));
    let first = dom.find("<tr class=\"trend ").expect("a trend line");
    let line = &dom[first..];
    let line = &line[..line.find("</tr>").unwrap_or(line.len())];
    assert!(line.starts_with("<tr class=\"trend regression\">"), "{dom}");
    assert!(line.contains("read-mode=linearizable"), "{line}");
    assert!(dom.contains("1 regression(s)"), "{dom}");
    // With n = 3 the two earlier valid runs are too few: mixed verdicts, flaky.
    let (dom, _) = common::http::chromium_dom(chrome, &url("/trends"));
    assert!(dom.contains("0 regression(s)"), "{dom}");
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

/// A campaign killed with SIGKILL once its first run is indexed: the index opens, passes
/// SQLite's integrity check and holds every run that finished, each as its directory reads;
/// rebuilt, it adds only the run cut short, without a verdict.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_campaign_killed_with_sigkill_keeps_its_finished_runs_indexed() {
    require_root();
    let home = home();
    let cluster = common::Cluster::up(home.path(), "campaignkill", 3);
    let file = home.path().join("quick.yaml");
    let quick = CAMPAIGN
        .replace("time-limit: 10s", "time-limit: 3s")
        .replace("nemesis: [partition]", "nemesis: [none]");
    std::fs::write(&file, quick).expect("write");
    let store = home.path().join("store");
    let args = [
        "campaign",
        file.to_str().unwrap(),
        "--cluster",
        cluster.arg(),
        "--store",
        store.to_str().unwrap(),
    ];
    let mut child = common::cmd(home.path(), &args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the campaign");
    let deadline = Instant::now() + Duration::from_secs(300);
    let indexed = |store: &Path| {
        if !store.join("index.sqlite").exists() {
            return 0;
        }
        Index::open(store)
            .and_then(|i| i.rows())
            .map_or(0, |r| r.len())
    };
    while indexed(&store) == 0 {
        assert!(Instant::now() < deadline, "no run indexed in time");
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the campaign ended early"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // Into the next run, then killed.
    std::thread::sleep(Duration::from_secs(2));
    child.kill().expect("SIGKILL");
    child.wait().expect("wait");

    let conn = rusqlite::Connection::open(store.join("index.sqlite")).expect("open");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let recorded = rows(&store);
    assert!(!recorded.is_empty() && recorded.len() < 4, "{recorded:#?}");
    for r in &recorded {
        assert_ne!(r.outcome, Outcome::None, "{r:?}");
        assert_eq!(&RunRow::from_dir(&store, &r.dir).expect("from dir"), r);
    }
    // Every run that wrote its results is in the index.
    for dir in harness::index::run_dirs(&store).expect("run dirs") {
        if store.join(&dir).join("results.json").is_file() {
            assert!(recorded.iter().any(|r| r.dir == dir), "{dir} not indexed");
        }
    }
    let out = faultline(
        home.path(),
        &["index", "rebuild", "--store", store.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let rebuilt = rows(&store);
    for r in &rebuilt {
        if !recorded.contains(r) {
            assert_eq!(
                r.outcome,
                Outcome::None,
                "only the killed run is new: {r:?}"
            );
        }
    }
    assert!(rebuilt.len() <= recorded.len() + 1);
    assert!(recorded.iter().all(|r| rebuilt.contains(r)));
}
