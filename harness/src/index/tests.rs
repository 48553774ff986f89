use super::*;
use crate::plan::CampaignRef;
use clap::Parser;

/// A run directory as `faultline test` leaves it, with the given results.json (none: a run
/// killed before checking).
pub(crate) fn fake_run(
    store: &Path,
    seed: u64,
    read_mode: &str,
    campaign: Option<(&str, &str)>,
    results: Option<serde_json::Value>,
) -> PathBuf {
    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        t: crate::cli::TestArgs,
    }
    let seed_text = seed.to_string();
    let args = W::parse_from([
        "t",
        "--cluster",
        "local:3",
        "--workload",
        "register",
        "--nemesis",
        "partition",
        "--time-limit",
        "10s",
        "--read-mode",
        read_mode,
        "--seed",
        &seed_text,
    ])
    .t;
    let mut resolved = crate::plan::make(&args, &workloads::Registry::builtin(), 0).expect("plan");
    resolved.plan.campaign = campaign.map(|(id, cell)| CampaignRef {
        id: id.into(),
        cell: cell.into(),
    });
    let dir = crate::store::create_run(store, &resolved.plan.name).expect("run dir");
    resolved.plan.write(&dir).expect("test.yaml");
    if let Some(doc) = results {
        std::fs::write(dir.join("results.json"), doc.to_string()).expect("results");
    }
    dir
}

fn invalid() -> serde_json::Value {
    serde_json::json!({
        "checker": "linearizable", "valid": false, "summary": "key 3 is not linearizable",
        "anomalies": [{"key": 3}],
        "power": {"weak": []}
    })
}

fn weak() -> serde_json::Value {
    serde_json::json!({
        "checker": "linearizable", "valid": true, "summary": "linearizable",
        "anomalies": [], "power": {"weak": ["no partition fault applied"]}
    })
}

#[test]
fn rows_round_trip_through_the_index() {
    let store = tempfile::tempdir().expect("tempdir");
    let dir = fake_run(
        store.path(),
        7,
        "serializable",
        Some(("nightly", "c1")),
        Some(invalid()),
    );
    record_run(store.path(), &dir).expect("record");
    let index = Index::open(store.path()).expect("open");
    let rows = index.rows().expect("rows");
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(row.outcome, Outcome::Invalid);
    assert_eq!(row.seed, 7);
    assert_eq!(row.options["read-mode"], "serializable");
    assert_eq!(row.anomalies["nonlinearizable"], 1);
    assert_eq!(row.campaign.as_deref(), Some("nightly"));
    assert_eq!(row.workload, "register");
    assert_eq!(
        index.cell("nightly", "c1").expect("cell").as_ref(),
        Some(row)
    );
    let again = RunRow::from_dir(store.path(), &row.dir).expect("from dir");
    assert_eq!(&again, row);
}

#[test]
fn a_rebuilt_index_equals_the_recorded_one() {
    let store = tempfile::tempdir().expect("tempdir");
    let dirs = [
        fake_run(store.path(), 1, "linearizable", None, Some(weak())),
        fake_run(store.path(), 2, "serializable", None, Some(invalid())),
        fake_run(store.path(), 3, "serializable", Some(("c", "x")), None),
    ];
    for d in &dirs {
        record_run(store.path(), d).expect("record");
    }
    let recorded = Index::open(store.path())
        .expect("open")
        .rows()
        .expect("rows");
    assert_eq!(recorded.len(), 3);
    assert!(recorded.iter().any(|r| r.is_weak()));
    assert!(recorded.iter().any(|r| r.outcome == Outcome::None));
    std::fs::remove_file(store.path().join(FILE)).expect("remove");
    let mut index = Index::open(store.path()).expect("open");
    let (n, skipped) = index.rebuild().expect("rebuild");
    assert_eq!((n, skipped.len()), (3, 0));
    assert_eq!(index.rows().expect("rows"), recorded);
    // Rebuilding again over a full index changes nothing.
    index.rebuild().expect("rebuild");
    assert_eq!(index.rows().expect("rows"), recorded);
}

#[test]
fn an_unreadable_run_is_named_not_fatal() {
    let store = tempfile::tempdir().expect("tempdir");
    fake_run(store.path(), 1, "linearizable", None, Some(weak()));
    let bad = store.path().join("broken").join("20260101T000000");
    std::fs::create_dir_all(&bad).expect("mkdir");
    std::fs::write(bad.join("test.yaml"), "name: [").expect("write");
    let (n, skipped) = Index::open(store.path())
        .expect("open")
        .rebuild()
        .expect("rebuild");
    assert_eq!(n, 1);
    assert_eq!(skipped.len(), 1);
    assert!(
        skipped[0].starts_with("broken/20260101T000000"),
        "{skipped:?}"
    );
}
