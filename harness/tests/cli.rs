//! `faultline check` as a user runs it: exit codes, messages, JSON and the timeline page.

use checkers::Verdict;
use std::path::{Path, PathBuf};
use std::process::Command;
mod common;
use common::{faultline_stateless as faultline, results, results_doc, text};

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/data/malformed")
}

/// Every malformed input is answered with exit 254 and a message naming file, line (and
/// column where the corpus says so) and what was wrong.
#[test]
fn malformed_inputs_exit_254_naming_the_line() {
    let mut seen = 0;
    for entry in std::fs::read_dir(corpus()).expect("corpus") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "expect") {
            continue;
        }
        let expect =
            std::fs::read_to_string(format!("{}.expect", path.display())).expect("sidecar .expect");
        let mut lines = expect.lines();
        let (model, loc, sub) = (
            lines.next().unwrap_or(""),
            lines.next().unwrap_or(""),
            lines.next().unwrap_or(""),
        );
        let file = path.to_str().expect("utf-8 path");
        let out = faultline(&["check", "--model", model, file]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(254), "{file}: {stderr}");
        assert!(
            stderr.contains(&format!("{file}:{loc}")),
            "{file}: expected location {loc} in: {stderr}"
        );
        assert!(
            stderr.contains(sub),
            "{file}: expected {sub:?} in: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{file}: {stderr}");
        seen += 1;
    }
    assert!(
        seen >= 25,
        "the corpus should hold at least 25 files, found {seen}"
    );
}

fn write_history(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n") + "\n").expect("write history");
    path.to_str().expect("utf-8").to_string()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("faultline-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

const STALE: &[&str] = &[
    r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k","value":1}"#,
    r#"{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"k","value":1}"#,
    r#"{"index":2,"time":25,"process":"nemesis","type":"info","f":"start-partition","value":{"n1":["n2"]}}"#,
    r#"{"index":3,"time":30,"process":1,"type":"invoke","f":"read","key":"k","value":null}"#,
    r#"{"index":4,"time":40,"process":1,"type":"ok","f":"read","key":"k","value":null}"#,
];

#[test]
fn exit_codes_and_json() {
    let dir = temp_dir("codes");
    let bad = write_history(&dir, "stale.jsonl", STALE);
    let out = faultline(&["check", "--model", "register", "--json", &bad]);
    assert_eq!(out.status.code(), Some(1));
    let doc = results_doc(&out.stdout);
    assert_eq!(doc.head.valid, Verdict::Invalid);
    let v = &doc.details;
    assert_eq!(v["model"], "register");
    assert_eq!(v["ops"], 2);
    assert_eq!(v["keys"], 1);
    assert!(v["elapsed_ms"].is_u64());
    let anomaly = &v["anomalies"][0];
    assert_eq!(anomaly["key"], "k");
    assert_eq!(anomaly["counterexample"]["failed_op"]["invoke_index"], 3);
    assert_eq!(anomaly["counterexample"]["prefix_len"], 1);

    let good = write_history(&dir, "ok.jsonl", &STALE[..3]);
    assert_eq!(
        faultline(&["check", "--model", "register", &good])
            .status
            .code(),
        Some(0)
    );
    // Knossos's convention: a nil read matches any state, so the stale read is accepted.
    assert_eq!(
        faultline(&["check", "--model", "register", "--knossos-nil-reads", &bad])
            .status
            .code(),
        Some(0)
    );

    // A tiny memory budget on a hard history: unknown, naming the key and the limit.
    let mut lines = Vec::new();
    for p in 0..12 {
        lines.push(format!(
            r#"{{"index":{p},"process":{p},"type":"invoke","f":"write","value":{p}}}"#
        ));
    }
    lines.push(r#"{"index":12,"process":20,"type":"invoke","f":"read","value":null}"#.to_string());
    lines.push(r#"{"index":13,"process":20,"type":"ok","f":"read","value":99}"#.to_string());
    for p in 0..12 {
        lines.push(format!(
            r#"{{"index":{},"process":{p},"type":"ok","f":"write","value":{p}}}"#,
            14 + p
        ));
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let hard = write_history(&dir, "hard.jsonl", &refs);
    let out = faultline(&[
        "check",
        "--model",
        "register",
        "--search-only",
        "--memory-limit",
        "20KiB",
        &hard,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("UNDECIDED: memory budget used up"),
        "{}",
        text(&out.stdout)
    );

    // Bad usage.
    assert_eq!(
        faultline(&["check", "--model", "nonsense", &good])
            .status
            .code(),
        Some(254)
    );
    assert_eq!(faultline(&["check", &good]).status.code(), Some(254));
    assert_eq!(
        faultline(&["check", "--model", "register", "/nonexistent/history.jsonl"])
            .status
            .code(),
        Some(254)
    );
    assert_eq!(
        faultline(&["check", "--model", "set", "--initial", "3", &good])
            .status
            .code(),
        Some(254)
    );
    let help = faultline(&["check", "--help"]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("Examples:"));
}

/// Two violations: op 4 reads 1 after 2 was written (the first one the search runs into),
/// and op 5 reads 7, which no op wrote (the one the fast path finds first). The reason and the
/// counterexample must be about the same op, in the text and in the JSON.
#[test]
fn the_reason_names_the_op_the_counterexample_cannot_linearize() {
    let dir = temp_dir("reason");
    let h = write_history(
        &dir,
        "two-violations.jsonl",
        &[
            r#"{"index":0,"process":0,"type":"invoke","f":"write","value":1}"#,
            r#"{"index":1,"process":0,"type":"ok","f":"write","value":1}"#,
            r#"{"index":2,"process":0,"type":"invoke","f":"write","value":2}"#,
            r#"{"index":3,"process":0,"type":"ok","f":"write","value":2}"#,
            r#"{"index":4,"process":1,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":5,"process":2,"type":"invoke","f":"read","value":null}"#,
            r#"{"index":6,"process":1,"type":"ok","f":"read","value":1}"#,
            r#"{"index":7,"process":2,"type":"ok","f":"read","value":7}"#,
        ],
    );
    let out = faultline(&["check", "--model", "register", &h]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("1 key(s) by fast path"), "{stdout}");
    let line = |prefix: &str| {
        stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {stdout}"))
            .to_string()
    };
    let reason = line("reason: ");
    let failed = line("cannot linearize next: ");
    assert!(failed.starts_with("[4] "), "{stdout}");
    assert!(reason.starts_with("op 4 (read -> 1) "), "{stdout}");

    let out = faultline(&["check", "--model", "register", "--json", &h]);
    let doc = results_doc(&out.stdout);
    let anomaly = &doc.details["anomalies"][0];
    assert_eq!(anomaly["method"], "fast-path", "{anomaly:#}");
    assert_eq!(anomaly["counterexample"]["failed_op"]["invoke_index"], 4);
    let reason = anomaly["reason"].as_str().expect("a reason");
    assert!(reason.starts_with("op 4 "), "{anomaly:#}");
}

#[test]
fn out_dir_gets_results_and_a_timeline() {
    let dir = temp_dir("out");
    let bad = write_history(&dir, "stale.jsonl", STALE);
    let out_dir = dir.join("report");
    let out = faultline(&[
        "check",
        "--model",
        "register",
        "--out",
        out_dir.to_str().expect("utf-8"),
        &bad,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let page = std::fs::read_to_string(out_dir.join("timeline.html")).expect("timeline.html");
    assert!(page.contains("<svg"));
    assert!(
        page.contains("key &quot;k&quot;") || page.contains("key \"k\""),
        "{page}"
    );
    assert!(page.contains("read -&gt; null"), "the failing op is drawn");
    assert!(!page.contains("<script"), "self-contained, no script");
    assert_eq!(results(&out_dir).head.valid, Verdict::Invalid);
}

/// A test file with an unknown option is refused before anything runs, naming the option.
#[test]
fn a_test_file_with_an_unknown_option_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("t.yaml");
    std::fs::write(&f, "workload: register\ntime-limitt: 5s\n").unwrap();
    let out = faultline(&[
        "test",
        "--cluster",
        "local:1",
        "--config",
        f.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(254));
    let err = text(&out.stderr);
    assert!(
        err.contains("time-limitt") && err.contains("t.yaml") && err.contains("line 2"),
        "{err}"
    );
}

/// Histories in every EDN layout Knossos reads (op maps over several lines in a vector, a
/// whole history as one list, `[process type f value]` tuples, plain and with keyed `[k v]`
/// values) are read and judged.
#[test]
fn reads_every_edn_layout_knossos_reads() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../checkers/tests/data/edn-layouts");
    for (name, code, ops, keys) in [
        ("multiline-vector-invalid.edn", 1, 3, 1),
        ("list-invalid.edn", 1, 3, 1),
        ("tuples-valid.edn", 0, 3, 1),
        ("tuples-keyed-invalid.edn", 1, 5, 2),
    ] {
        let file = dir.join(name);
        let file = file.to_str().expect("utf-8 path");
        let out = faultline(&["check", "--model", "cas-register", "--json", file]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{name}: {stdout} {}",
            text(&out.stderr)
        );
        let doc = results_doc(&out.stdout);
        assert_eq!(doc.details["keys"], keys, "{name}: {stdout}");
        assert_eq!(doc.details["ops"], ops, "{name}: {stdout}");
    }
}

/// A history with many processes in flight is held to `--memory-limit` while it is read, not
/// only during the search: past the limit the verdict is unknown (exit 2) with a message that
/// says so; within it the history checks as before. Before: exit 0, the builder's memory
/// unaccounted.
#[test]
fn the_memory_limit_covers_reading_the_history() {
    let dir = temp_dir("memory");
    let lines: Vec<String> = (0..100_000)
        .map(|p| {
            format!(r#"{{"index":{p},"process":{p},"type":"invoke","f":"write","value":{p}}}"#)
        })
        .collect();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let file = write_history(&dir, "in-flight.jsonl", &refs);
    let out = faultline(&[
        "check",
        "--model",
        "cas-register",
        "--memory-limit",
        "2MiB",
        &file,
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout} {}", text(&out.stderr));
    assert!(
        stdout.contains("memory budget of 2097152 bytes used up while reading the history"),
        "{stdout}"
    );
    let out = faultline(&[
        "check",
        "--model",
        "cas-register",
        "--memory-limit",
        "2MiB",
        "--json",
        &file,
    ]);
    let doc = results_doc(&out.stdout);
    assert_eq!(doc.head.valid, Verdict::Unknown);
    assert!(doc.details["undecided"][0]["reason"]
        .as_str()
        .is_some_and(|r| r.contains("--memory-limit")));
    let out = faultline(&[
        "check",
        "--model",
        "cas-register",
        "--memory-limit",
        "256MiB",
        &file,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--memory-limit` holds for the transactional models as for linearizability: on generated
/// 100,000-transaction list-append and rw-register histories, a 16 MiB limit ends in unknown
/// (exit 2) saying the budget was used up, and the process's peak memory stays near the limit
/// (the whole process, with the binary and the reader's buffers, under limit + 40 MiB; with no
/// limit the same check peaks over 100 MiB). A
/// roomy limit still decides the list-append history. Before: no budget; 100k transactions
/// took hundreds of MiB whatever the limit.
#[test]
fn the_memory_limit_holds_for_transactional_histories() {
    let dir = temp_dir("txn-memory");
    for model in ["list-append", "rw-register"] {
        let file = dir.join(format!("{model}.jsonl"));
        let gen = Command::new(env!("CARGO_BIN_EXE_faultline-gen"))
            .args([
                "--txn", model, "--ops", "100000", "--keys", "100", "--seed", "1",
            ])
            .output()
            .expect("run faultline-gen");
        assert!(gen.status.success(), "{}", text(&gen.stderr));
        std::fs::write(&file, &gen.stdout).expect("write history");
        let file = file.to_str().expect("utf-8 path");
        for consistency in ["strict-serializable", "snapshot-isolation"] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_faultline"));
            cmd.args([
                "check",
                "--model",
                model,
                "--consistency",
                consistency,
                "--memory-limit",
                "16MiB",
                "--time-limit",
                "20s",
                "--json",
                file,
            ]);
            let (out, peak_kib) = common::run_measured(cmd);
            let stdout = text(&out.stdout);
            assert_eq!(
                out.status.code(),
                Some(2),
                "{model}: {stdout} {}",
                text(&out.stderr)
            );
            let json: serde_json::Value = serde_json::from_str(&stdout).expect("json");
            assert_eq!(json["valid"], "unknown", "{stdout}");
            assert!(
                json["unknown_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("memory budget of 16777216 bytes used up")),
                "{stdout}"
            );
            assert!(
                peak_kib < (16 + 40) * 1024,
                "{model} {consistency}: peak {peak_kib} KiB under a 16 MiB limit"
            );
        }
    }
    let out = faultline(&[
        "check",
        "--model",
        "list-append",
        "--memory-limit",
        "1GiB",
        dir.join("list-append.jsonl").to_str().expect("utf-8 path"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `--model list-append` checks transactions: a write skew is valid under snapshot isolation
/// (exit 0) and a G2-item under serializable (exit 1), whose cycle is explained edge by edge
/// and drawn under `--out`; `--consistency` is refused for a single-object model.
#[test]
fn transactions_are_checked_against_the_consistency_model_asked_for() {
    let dir = temp_dir("txn-write-skew");
    let h = write_history(
        &dir,
        "skew.jsonl",
        &[
            r#"{"index":0,"type":"invoke","process":0,"f":"txn","value":[["r","x",null],["append","y",1]],"time":0}"#,
            r#"{"index":1,"type":"invoke","process":1,"f":"txn","value":[["r","y",null],["append","x",2]],"time":1}"#,
            r#"{"index":2,"type":"ok","process":0,"f":"txn","value":[["r","x",[]],["append","y",1]],"time":2}"#,
            r#"{"index":3,"type":"ok","process":1,"f":"txn","value":[["r","y",[]],["append","x",2]],"time":3}"#,
            r#"{"index":4,"type":"invoke","process":0,"f":"txn","value":[["r","x",null],["r","y",null]],"time":4}"#,
            r#"{"index":5,"type":"ok","process":0,"f":"txn","value":[["r","x",[2]],["r","y",[1]]],"time":5}"#,
        ],
    );
    let si = faultline(&[
        "check",
        "--model",
        "list-append",
        "--consistency",
        "snapshot-isolation",
        &h,
    ]);
    assert_eq!(si.status.code(), Some(0), "{}", text(&si.stderr));

    let out_dir = dir.join("out");
    let ser = faultline(&[
        "check",
        "--model",
        "list-append",
        "--consistency",
        "serializable",
        "--json",
        "--out",
        out_dir.to_str().expect("utf-8"),
        &h,
    ]);
    assert_eq!(ser.status.code(), Some(1), "{}", text(&ser.stderr));
    let doc = results_doc(&ser.stdout);
    assert_eq!(doc.head.valid, Verdict::Invalid);
    assert_eq!(doc.checker(), "transactional");
    let cycle = doc.details["anomalies"]["G2-item"][0]["cycle"]
        .as_array()
        .unwrap_or_else(|| panic!("a G2-item cycle in {doc:?}"));
    assert_eq!(cycle.len(), 2, "{doc:?}");
    for edge in cycle {
        assert_eq!(edge["kind"], "rw", "{edge}");
        assert!(
            edge["why"].as_str().is_some_and(|w| w.contains("read")),
            "{edge}"
        );
    }
    let svgs: Vec<String> = std::fs::read_dir(&out_dir)
        .expect("--out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".svg"))
        .collect();
    assert_eq!(svgs, ["cycle-01-G2-item.svg"], "{svgs:?}");
    assert_eq!(results(&out_dir).head.valid, Verdict::Invalid);

    let wrong = faultline(&[
        "check",
        "--model",
        "register",
        "--consistency",
        "serializable",
        &h,
    ]);
    assert_eq!(wrong.status.code(), Some(254));
    assert!(text(&wrong.stderr).contains("only for the transactional models"));
}

/// `--assume` narrows an rw-register check: Elle's G0 under sequential keys is serializable
/// (exit 0, resting on nothing) but not under the assumption (exit 1), and results.json lists
/// the assumption that verdict rests on; a linearizability model refuses `--assume`.
#[test]
fn rw_register_assumptions_narrow_the_verdict_and_are_listed() {
    let dir = temp_dir("txn-assume");
    let h = write_history(
        &dir,
        "g0.jsonl",
        &[
            r#"{"index":0,"type":"invoke","process":0,"f":"txn","value":[["w","x",1],["w","y",1]]}"#,
            r#"{"index":1,"type":"invoke","process":1,"f":"txn","value":[["w","x",2],["w","y",2]]}"#,
            r#"{"index":2,"type":"ok","process":0,"f":"txn","value":[["w","x",1],["w","y",1]]}"#,
            r#"{"index":3,"type":"ok","process":1,"f":"txn","value":[["w","x",2],["w","y",2]]}"#,
            r#"{"index":4,"type":"invoke","process":0,"f":"txn","value":[["r","x",null]]}"#,
            r#"{"index":5,"type":"invoke","process":1,"f":"txn","value":[["r","y",null]]}"#,
            r#"{"index":6,"type":"ok","process":0,"f":"txn","value":[["r","x",2]]}"#,
            r#"{"index":7,"type":"ok","process":1,"f":"txn","value":[["r","y",1]]}"#,
        ],
    );
    let check = |assume: &[&str]| {
        let mut args = vec![
            "check",
            "--model",
            "rw-register",
            "--consistency",
            "serializable",
            "--json",
        ];
        for a in assume {
            args.extend(["--assume", a]);
        }
        args.push(&h);
        faultline(&args)
    };
    let plain = check(&[]);
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain.stderr));
    assert_eq!(
        results_doc(&plain.stdout).details["assumptions"],
        serde_json::json!([])
    );
    let narrowed = check(&["sequential-keys", "wfr-keys"]);
    assert_eq!(
        narrowed.status.code(),
        Some(1),
        "{}",
        text(&narrowed.stderr)
    );
    assert_eq!(
        results_doc(&narrowed.stdout).details["assumptions"],
        serde_json::json!(["sequential-keys"])
    );
    let wrong = faultline(&[
        "check",
        "--model",
        "register",
        "--assume",
        "sequential-keys",
        &h,
    ]);
    assert_eq!(wrong.status.code(), Some(254));
    assert!(text(&wrong.stderr).contains("only for the transactional models"));
}
