//! `faultline serve` as a user meets it: a store with a valid and an invalid run (checked by
//! `faultline check --out`), then plain HTTP requests: the index lists both runs with their
//! verdicts, newest first; a run's timeline and history are served with their content types;
//! a run directory without its slash redirects; nothing outside the store is served, through
//! `..` or through a symbolic link; a run that appears later shows on the next request. On a
//! generated store of 300 runs: paging, filters, trends and the compare page.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
mod common;
use common::faultline_stateless;
use common::http::{get, serve};

const VALID: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k","value":1}
{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"k","value":1}
{"index":2,"time":30,"process":1,"type":"invoke","f":"read","key":"k","value":null}
{"index":3,"time":40,"process":1,"type":"ok","f":"read","key":"k","value":1}
"#;

/// A read of 1 after 2 was written and acknowledged: a stale read.
const STALE: &str = r#"{"index":0,"time":10,"process":0,"type":"invoke","f":"write","key":"k","value":1}
{"index":1,"time":20,"process":0,"type":"ok","f":"write","key":"k","value":1}
{"index":2,"time":30,"process":0,"type":"invoke","f":"write","key":"k","value":2}
{"index":3,"time":40,"process":0,"type":"ok","f":"write","key":"k","value":2}
{"index":4,"time":50,"process":1,"type":"invoke","f":"read","key":"k","value":null}
{"index":5,"time":60,"process":1,"type":"ok","f":"read","key":"k","value":1}
"#;

/// Makes `store/<test>/<stamp>/` with `history` in it, checked into results.json and
/// timeline.html by `faultline check --out`; returns check's exit code.
fn make_run(store: &Path, test: &str, stamp: &str, history: &str) -> i32 {
    let dir = store.join(test).join(stamp);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("history.jsonl"), history).unwrap();
    let history = dir.join("history.jsonl");
    let utf8 = |p: &'_ Path| p.to_str().expect("a UTF-8 path").to_string();
    faultline_stateless(&[
        "check",
        "--model",
        "register",
        "--out",
        &utf8(&dir),
        &utf8(&history),
    ])
    .status
    .code()
    .unwrap_or(-1)
}

/// The value of the content-type header in a lower-cased head.
fn content_type(head: &str) -> &str {
    head.lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_else(|| panic!("no content-type in {head}"))
        .trim()
}

#[test]
fn the_store_is_served_with_verdicts_and_nothing_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    assert_eq!(make_run(&store, "reg", "20261201T080000", VALID), 0);
    assert_eq!(make_run(&store, "reg", "20261201T090000", STALE), 1);
    std::os::unix::fs::symlink("reg/20261201T090000", store.join("latest")).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "outside the store").unwrap();
    std::os::unix::fs::symlink(tmp.path(), store.join("reg/out")).unwrap();

    let server = serve(&store, &[]);
    let addr = server.addr.clone();

    // The index: both runs, newest first, with their verdicts.
    let (status, head, index) = get(&addr, "/");
    assert_eq!(status, 200, "{head}");
    assert_eq!(content_type(&head), "text/html; charset=utf-8", "{head}");
    let stale = index
        .find("2026-12-01 09:00:00 UTC")
        .expect("the later run");
    let valid = index
        .find("2026-12-01 08:00:00 UTC")
        .expect("the earlier run");
    assert!(stale < valid, "newest first");
    assert!(index[stale..valid].contains("INVALID"), "{index}");
    assert!(
        index[valid..].contains(">valid<") && !index[valid..].contains("INVALID"),
        "{index}"
    );
    assert!(index.contains("/runs/reg/20261201T090000/timeline.html"));
    assert_eq!(index.matches("<tr><td>").count(), 2, "latest is not a run");

    // A run's files, each with its own type and exactly the stored bytes.
    let run = |stamp: &str, file: &str| {
        std::fs::read_to_string(store.join("reg").join(stamp).join(file)).expect(file)
    };
    let (status, head, timeline) = get(&addr, "/runs/reg/20261201T090000/timeline.html");
    assert_eq!(status, 200);
    assert_eq!(content_type(&head), "text/html; charset=utf-8", "{head}");
    assert_eq!(timeline, run("20261201T090000", "timeline.html"));
    assert!(
        timeline.starts_with("<!DOCTYPE html>")
            && timeline.contains("<b>INVALID: not linearizable</b>"),
        "{timeline}"
    );
    let (status, head, history) = get(&addr, "/runs/latest/history.jsonl");
    assert_eq!(status, 200);
    assert_eq!(content_type(&head), "text/plain; charset=utf-8", "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert_eq!(history, STALE);
    let (status, head, results) = get(&addr, "/runs/reg/20261201T080000/results.json");
    assert_eq!(status, 200);
    assert_eq!(content_type(&head), "application/json", "{head}");
    assert_eq!(results, run("20261201T080000", "results.json"));
    let results: serde_json::Value = serde_json::from_str(&results).expect("results.json");
    assert_eq!(results["valid"], serde_json::json!(true), "{results}");

    // A directory: redirected to its slash, then listed.
    let (status, head, _) = get(&addr, "/runs/reg/20261201T090000");
    assert_eq!(status, 308, "{head}");
    assert!(
        head.contains("location: /runs/reg/20261201t090000/"),
        "{head}"
    );
    let (status, _, list) = get(&addr, "/runs/reg/20261201T090000/");
    assert_eq!(status, 200);
    assert!(list.contains("history.jsonl") && list.contains("results.json"));

    // Nothing outside the store, however asked.
    for path in [
        "/runs/../secret.txt",
        "/runs/reg/../../secret.txt",
        "/runs/%2e%2e/secret.txt",
        "/runs/reg/out/secret.txt",
        "/runs//etc/passwd",
        "/runs/reg/20261201T090000/missing.txt",
    ] {
        let (status, _, body) = get(&addr, path);
        assert!(status == 404 || status == 400, "{path}: {status} {body}");
        assert!(
            !body.contains("outside the store") && !body.contains("root:"),
            "{path}"
        );
    }

    // A page that points a name of its own at this address (DNS rebinding) gets nothing.
    let mut s = TcpStream::connect(&addr).unwrap();
    write!(
        s,
        "GET / HTTP/1.1\r\nHost: rebind.example:8080\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 421"), "{raw}");
    assert!(!raw.contains("20261201"), "{raw}");

    // A run made now shows on the next request.
    assert_eq!(make_run(&store, "reg", "20261201T100000", VALID), 0);
    let (_, _, index) = get(&addr, "/");
    assert!(index.contains("2026-12-01 10:00:00 UTC"), "{index}");
    assert_eq!(index.matches("<tr><td>").count(), 3);
}

#[test]
fn a_missing_store_is_bad_input() {
    let out = faultline_stateless(&[
        "serve",
        "--store",
        "/nonexistent/store",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(254));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/store"), "{err}");
}

/// Half-sent requests (headers never finished) and idle connections are closed after the
/// idle timeout, and the server still answers others meanwhile. Before: 200 such
/// connections stayed open indefinitely.
#[test]
fn half_sent_requests_time_out() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let server = serve(&store, &["--idle-timeout", "2s"]);
    let addr = server.addr.clone();
    let started = std::time::Instant::now();
    let mut conns: Vec<TcpStream> = (0..200)
        .map(|i| {
            let mut s = TcpStream::connect(&addr).expect("connect");
            if i % 2 == 0 {
                // Headers begun, never ended.
                write!(s, "GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").unwrap();
            }
            s
        })
        .collect();
    // Others are still answered.
    let (status, _, _) = get(&addr, "/");
    assert_eq!(status, 200);
    for (i, s) in conns.iter_mut().enumerate() {
        s.set_read_timeout(Some(std::time::Duration::from_secs(8)))
            .unwrap();
        let mut buf = [0u8; 512];
        // The server closes: EOF, a reset, or a 408 answer followed by EOF.
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(
            closed,
            "connection {i} still open after {:?}",
            started.elapsed()
        );
    }
    let took = started.elapsed();
    assert!(
        took >= std::time::Duration::from_millis(1500) && took < std::time::Duration::from_secs(10),
        "closed after {took:?}"
    );
}

/// Directory listings show links as links: a link leading out of the store is listed
/// without being followed (no size, no type of its target); one inside is listed as what
/// it points at. Before: the size of the link's target outside the store was shown.
#[test]
fn listings_do_not_follow_links_out_of_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let run = store.join("reg/20261201T080000");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("history.jsonl"), VALID).unwrap();
    std::fs::write(tmp.path().join("secret"), vec![b'x'; 987_654]).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("secret"), run.join("shadow")).unwrap();
    std::os::unix::fs::symlink(tmp.path(), run.join("outdir")).unwrap();
    std::os::unix::fs::symlink("history.jsonl", run.join("inside")).unwrap();
    let server = serve(&store, &[]);
    let addr = server.addr.clone();
    let (status, _, list) = get(&addr, "/runs/reg/20261201T080000/");
    assert_eq!(status, 200, "{list}");
    assert!(!list.contains("987654"), "{list}");
    assert!(list.contains("shadow") && list.contains("outdir"), "{list}");
    assert!(list.contains("outside the store"), "{list}");
    assert!(
        !list.contains("outdir/"),
        "not listed as a directory: {list}"
    );
    let len = VALID.len().to_string();
    assert!(
        list.contains(&format!("inside</a></td><td>{len}")),
        "{list}"
    );
    let (status, _, body) = get(&addr, "/runs/reg/20261201T080000/shadow");
    assert_eq!(status, 404, "{body}");
}

/// `&amp;` in an attribute back to `&`.
fn unescape(s: &str) -> String {
    s.replace("&amp;", "&")
}

/// The `href`s in `page` that start with `prefix`, unescaped.
fn links(page: &str, prefix: &str) -> Vec<String> {
    let start = format!("href=\"{prefix}");
    page.match_indices(start.as_str())
        .filter_map(|(i, _)| {
            let rest = &page[i + 6..];
            rest.find('"').map(|end| unescape(&rest[..end]))
        })
        .collect()
}

/// A generated store of 300 runs (`faultline bench-store`: 24 configurations, one of them
/// regressed): the list pages by 100 newest first, filters by verdict and fault, the trends
/// page puts the regression first and counts every configuration, and the list's compare
/// links lead to a page with both runs, their differing seeds marked.
#[test]
fn a_generated_store_is_listed_filtered_trended_and_compared() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let out = faultline_stateless(&[
        "bench-store",
        "--store",
        store.to_str().unwrap(),
        "--runs",
        "300",
    ]);
    assert!(out.status.success());
    // A checked history whose names and summary are markup: shown as text.
    let evil = store.join("<script>alert(1)").join("20261201T080000");
    std::fs::create_dir_all(&evil).unwrap();
    std::fs::write(
        evil.join("results.json"),
        r#"{"valid": false, "summary": "<img src=x onerror=alert(2)>", "anomalies": []}"#,
    )
    .unwrap();
    let server = serve(&store, &[]);
    let addr = server.addr.clone();

    let (status, _, list) = get(&addr, "/");
    assert_eq!(status, 200, "{list}");
    assert!(list.contains("301 run(s)"), "{list}");
    assert!(list.contains("page 1 of 4"), "{list}");
    assert_eq!(list.matches("<tr><td>").count(), 100);
    let starts: Vec<&str> = list
        .match_indices("<tr><td>")
        .map(|(i, _)| &list[i + 8..i + 31])
        .collect();
    assert!(starts.windows(2).all(|w| w[0] >= w[1]), "{starts:?}");
    let (_, _, last) = get(&addr, "/?page=4");
    assert_eq!(last.matches("<tr><td>").count(), 1, "{last}");
    assert!(!last.contains("<script>alert") && !last.contains("<img src=x"));
    assert!(last.contains("&lt;script&gt;alert(1)"), "{last}");
    assert!(
        last.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "{last}"
    );

    let (status, _, invalid) = get(&addr, "/?verdict=invalid&fault=kill&db=etcd");
    assert_eq!(status, 200);
    let rows = invalid.matches("<tr><td>").count();
    assert!(rows > 0, "{invalid}");
    assert_eq!(rows, invalid.matches("class=\"INVALID\">INVALID<").count());
    assert_eq!(
        rows,
        invalid.matches(" / kill</a>").count() + invalid.matches(" / partition,kill</a>").count()
    );
    assert!(invalid.contains("matching the filters"));

    let (status, _, trends) = get(&addr, "/trends");
    assert_eq!(status, 200, "{trends}");
    assert!(
        trends.contains("24 configuration(s): 1 regression(s)"),
        "{trends}"
    );
    let first = trends.find("<tr class=\"trend ").expect("a trend line");
    assert!(trends[first..].starts_with("<tr class=\"trend regression\">"));
    assert!(!trends.contains("<script>alert"));
    // Every run of the strip links to its directory.
    assert_eq!(links(&trends, "/runs/").len(), 300);
    // n larger than any configuration's runs: no regression.
    let (_, _, none) = get(&addr, "/trends?n=20");
    assert!(none.contains(": 0 regression(s)"), "{none}");
    let (_, _, filtered) = get(&addr, "/trends?workload=set&fault=none");
    assert!(filtered.contains("2 configuration(s)"), "{filtered}");

    let compare = links(&list, "/compare?")
        .into_iter()
        .next()
        .expect("a compare link");
    let (status, _, page) = get(&addr, &compare);
    assert_eq!(status, 200, "{compare}: {page}");
    assert!(
        page.contains("<tr class=\"differs\"><td>≠</td><td><code>seed</code></td>"),
        "{page}"
    );
    assert!(page.contains("<code>db_options.read-mode</code>"), "{page}");
    assert!(page.contains("ok ops per second"), "{page}");
    let (status, _, _) = get(&addr, "/compare?a=../../etc&b=x");
    assert_eq!(status, 404);
}
