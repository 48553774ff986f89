//! report.html as a person sees it: `faultline analyze` on a stored run (a real history with
//! a stale read and a partition), then the page opened in headless Chromium: the DOM has the
//! verdict and both plots, the screenshot shows the verdict's banner, and Chromium reports no
//! script error. The files are checked everywhere; the Chromium test is listed as ignored
//! where the build found no Chromium (scripts/install-deps installs it; CI runs it).

use clusters::testing::require_chromium;
use std::path::Path;
use std::process::Command;
mod common;

/// A run directory: test.yaml and a history where a read returns a value overwritten before
/// it began (invalid), with a partition in the middle.
fn stored_run(dir: &Path) {
    std::fs::write(
        dir.join("test.yaml"),
        "name: report-test\nworkload: register\nseed: 1\n",
    )
    .unwrap();
    let s = 1_000_000_000u64;
    let mut lines = Vec::new();
    let mut i = 0;
    let mut ev = |t: u64, p: &str, ty: &str, f: &str, v: &str| {
        lines.push(format!(
            r#"{{"index":{i},"time":{t},"process":{p},"type":"{ty}","f":"{f}","key":1,"value":{v}}}"#
        ));
        i += 1;
    };
    for k in 0..40u64 {
        let t = k * s / 10;
        ev(t, "0", "invoke", "write", &k.to_string());
        ev(t + 3_000_000, "0", "ok", "write", &k.to_string());
        ev(t + 4_000_000, "1", "invoke", "read", "null");
        ev(t + 6_000_000, "1", "ok", "read", &k.to_string());
    }
    ev(5 * s, "1", "invoke", "read", "null");
    ev(5 * s + 1_000_000, "1", "ok", "read", "3");
    let mut text = lines.join("\n");
    text.push('\n');
    text.push_str(&format!(
        "{{\"index\":{i},\"time\":{},\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-partition\",\"value\":{{\"n1\":[\"n2\"]}}}}\n",
        s
    ));
    text.push_str(&format!(
        "{{\"index\":{},\"time\":{},\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"stop-partition\",\"value\":null}}\n",
        i + 1,
        3 * s
    ));
    std::fs::write(dir.join("history.jsonl"), text).unwrap();
}

/// `faultline analyze` on [`stored_run`] in a fresh directory: exit 1 (invalid), and every
/// report file written.
fn analyzed_run() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    stored_run(dir.path());
    let out = common::faultline_stateless(&["analyze", dir.path().to_str().expect("a UTF-8 path")]);
    assert_eq!(out.status.code(), Some(1));
    for f in [
        "report.html",
        "latency.svg",
        "rate.svg",
        "junit.xml",
        "results.json",
    ] {
        assert!(dir.path().join(f).exists(), "{f}");
    }
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(
        junit.contains("failures=\"1\"") && junit.contains("<failure"),
        "{junit}"
    );
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(!html.contains("<script"), "the page must not need scripts");
    dir
}

#[test]
fn analyze_writes_every_report_file_of_an_invalid_run() {
    analyzed_run();
}

#[test]
#[cfg_attr(no_chromium, ignore = "needs Chromium (apt-get install chromium)")]
fn the_report_shows_the_verdict_and_both_plots_in_chromium() {
    let chrome = require_chromium();
    let dir = analyzed_run();
    let url = format!("file://{}", dir.path().join("report.html").display());
    let profile = tempfile::tempdir().unwrap();
    let base = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ];
    let dom = Command::new(chrome)
        .args(base)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&dom.stdout);
    assert!(page.contains("id=\"verdict\">INVALID<"), "verdict missing");
    let svgs = page.matches("<svg").count();
    assert!(svgs >= 2, "{svgs} plots in the page");
    assert!(page.contains("id=\"latency\"") && page.contains("id=\"rate\""));
    let log = String::from_utf8_lossy(&dom.stderr);
    assert!(!log.contains("Uncaught"), "script errors: {log}");

    let shot = dir.path().join("report.png");
    let out = Command::new(chrome)
        .args(base)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--window-size=1200,1600")
        .arg(format!("--screenshot={}", shot.display()))
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The INVALID banner (#c62828) covers a good part of the top of the page.
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap_or(0)];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let red = buf[..info.buffer_size()]
        .chunks(channels)
        .filter(|p| p[0] > 180 && p[1] < 70 && p[2] < 70)
        .count();
    assert!(red > 10_000, "only {red} banner pixels in the screenshot");
}
