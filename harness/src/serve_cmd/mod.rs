//! `faultline serve`: the store over HTTP. `/` is an index of every run (newest first) with
//! its verdict, read anew on each request; `/runs/<path>` serves files and directory
//! listings from inside the store, and nothing outside it (`..` is refused and symbolic links
//! such as `latest` are followed only when they stay in the store). Listings show a link that
//! leads out of the store as such, without following it. A connection that does not finish
//! its request's headers, or stays idle, within `--idle-timeout` is closed.

use crate::cli::ServeArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::timeline::escape;
use anyhow::anyhow;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::future::Future;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Serves `args.store` until the process is stopped.
pub fn run(args: &ServeArgs) -> Result<Exit, Failure> {
    let store = std::fs::canonicalize(&args.store).map_err(|e| {
        bad_input(anyhow!(
            "store {}: {e} (faultline test --store DIR makes one)",
            args.store.display()
        ))
    })?;
    if !store.is_dir() {
        return Err(bad_input(anyhow!(
            "store {}: not a directory",
            store.display()
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(internal)?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| bad_input(anyhow!("cannot listen on {}: {e}", args.listen)))?;
        let addr = listener.local_addr().map_err(internal)?;
        let mut out = std::io::stdout();
        let _ = writeln!(out, "http://{addr}/");
        let _ = out.flush();
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "serving the store beyond this machine: anyone who can reach this address can read its histories and logs");
        }
        eprintln!("serving {} at http://{addr}/ (Ctrl-C stops)", store.display());
        let app = Router::new()
            .route("/", get(index))
            .route("/runs/", get(|| async { Redirect::permanent("/") }))
            .route("/runs/{*path}", get(file))
            .with_state(Arc::new(store))
            .layer(axum::middleware::from_fn_with_state(
                addr.ip().is_loopback(),
                only_local_names,
            ));
        accept(listener, app, args.idle_timeout).await;
        Ok(Exit::Valid)
    })
}

/// Serves connections from `listener` with `app`, one task each. A connection that has not
/// sent a request's headers within `timeout` (a half-sent request, or an idle keep-alive
/// connection), or that reads and writes nothing for `timeout`, is closed: a client cannot hold
/// connections, and their file descriptors, open for ever.
async fn accept(listener: tokio::net::TcpListener, app: Router, timeout: Duration) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, say: wait for connections to close.
                tracing::warn!("accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(Idle::new(stream, timeout));
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout);
            if let Err(e) = builder.serve_connection(io, service).await {
                tracing::debug!("connection closed: {e}");
            }
        });
    }
}

/// A stream that fails with `TimedOut` when neither a read nor a write makes progress for
/// its timeout (a client that stops reading a response, or sends nothing).
struct Idle<T> {
    inner: T,
    timeout: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl<T> Idle<T> {
    fn new(inner: T, timeout: Duration) -> Idle<T> {
        Idle {
            inner,
            timeout,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        }
    }

    /// After a poll of the inner stream: progress moves the deadline; no progress past the
    /// deadline is an error.
    fn check<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        match poll {
            Poll::Ready(r) => {
                let next = tokio::time::Instant::now() + self.timeout;
                self.deadline.as_mut().reset(next);
                Poll::Ready(r)
            }
            Poll::Pending => match self.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connection idle for too long",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.check(cx, poll)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.check(cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.check(cx, poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// On a loopback address, answers only requests that name this machine as localhost (or a
/// loopback address) in their Host header, so that a web page cannot read the store by
/// pointing a name of its own at 127.0.0.1 (DNS rebinding).
async fn only_local_names(
    State(loopback): State<bool>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if loopback && !is_local_host(host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "faultline serve answers only requests for localhost\n",
        )
            .into_response();
    }
    next.run(req).await
}

/// Whether a Host header names this machine by a loopback name or address (any port).
pub fn is_local_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// One run of the store, as the index shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    /// `<test-name>/<stamp>`, relative to the store.
    pub path: String,
    /// The test's name.
    pub test: String,
    /// The directory's time stamp, `YYYYmmddTHHMMSS` (maybe with `-N`).
    pub stamp: String,
    /// valid, INVALID, unknown, or none (no results.json yet).
    pub verdict: String,
    /// The checker's one-line summary.
    pub summary: String,
    /// The seed and faults from test.yaml, when it is there.
    pub seed: Option<String>,
    /// The faults asked for.
    pub nemesis: Option<String>,
}

/// Every run under `store` (`<test>/<stamp>/` holding test.yaml, history.jsonl or
/// results.json), newest first.
pub fn runs(store: &Path) -> Vec<RunRow> {
    let mut rows = Vec::new();
    let Ok(tests) = std::fs::read_dir(store) else {
        return rows;
    };
    for t in tests.flatten() {
        // `latest` and other links are not tests of their own.
        if !t.file_type().is_ok_and(|f| f.is_dir()) {
            continue;
        }
        let test = t.file_name().to_string_lossy().into_owned();
        let Ok(stamps) = std::fs::read_dir(t.path()) else {
            continue;
        };
        for r in stamps.flatten() {
            let dir = r.path();
            let is_run = ["test.yaml", "history.jsonl", "results.json"]
                .iter()
                .any(|f| dir.join(f).is_file());
            if !r.file_type().is_ok_and(|f| f.is_dir()) || !is_run {
                continue;
            }
            let stamp = r.file_name().to_string_lossy().into_owned();
            rows.push(row(&dir, &test, &stamp));
        }
    }
    rows.sort_by(|a, b| b.stamp.cmp(&a.stamp).then_with(|| a.test.cmp(&b.test)));
    rows
}

fn row(dir: &Path, test: &str, stamp: &str) -> RunRow {
    let head = std::fs::read_to_string(dir.join("results.json"))
        .ok()
        .map(|t| serde_json::from_str::<checkers::check::ResultsHead>(&t));
    let (verdict, summary) = match head {
        None => (
            "none".to_string(),
            "no results yet: running, or interrupted".to_string(),
        ),
        Some(Err(e)) => (
            "unknown".to_string(),
            format!("unreadable results.json: {e}"),
        ),
        Some(Ok(h)) => (
            match h.valid {
                checkers::Verdict::Valid => "valid",
                checkers::Verdict::Invalid => "INVALID",
                checkers::Verdict::Unknown => "unknown",
            }
            .to_string(),
            h.summary
                .unwrap_or_else(|| "(written by an older faultline: no summary)".to_string()),
        ),
    };
    let plan = crate::plan::PlanFile::load(&dir.join("test.yaml")).ok();
    RunRow {
        path: format!("{test}/{stamp}"),
        test: test.to_string(),
        stamp: stamp.to_string(),
        verdict,
        summary,
        seed: plan.as_ref().and_then(|p| p.seed()).map(|s| s.to_string()),
        nemesis: plan.as_ref().and_then(|p| p.nemesis()).map(String::from),
    }
}

/// `20261201T084750` as `2026-12-01 08:47:50 UTC`; anything else as it is.
fn when(stamp: &str) -> String {
    let b = stamp.as_bytes();
    if b.len() >= 15 && b[8] == b'T' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit) {
        format!(
            "{}-{}-{} {}:{}:{} UTC{}",
            &stamp[..4],
            &stamp[4..6],
            &stamp[6..8],
            &stamp[9..11],
            &stamp[11..13],
            &stamp[13..15],
            &stamp[15..]
        )
    } else {
        stamp.to_string()
    }
}

/// The index page of `store`'s runs.
pub fn index_html(store: &Path, rows: &[RunRow]) -> String {
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>faultline runs</title><style>\
         body{font:14px system-ui,sans-serif;margin:24px}table{border-collapse:collapse}\
         td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
         .valid{color:#1a7f37;font-weight:600}.INVALID{color:#cf222e;font-weight:700}\
         .unknown{color:#bc4c00;font-weight:600}.none{color:#777}</style></head><body>",
    );
    h.push_str(&format!(
        "<h1>faultline runs</h1><p>{} run(s) in <code>{}</code>, newest first.</p>",
        rows.len(),
        escape(&store.display().to_string())
    ));
    if rows.is_empty() {
        h.push_str("<p>No runs yet: <code>faultline test --store DIR ...</code> makes them.</p>");
    } else {
        h.push_str("<table><tr><th>started</th><th>test</th><th>verdict</th><th>summary</th><th>seed</th><th>faults</th><th>open</th></tr>");
        for r in rows {
            let base = format!("/runs/{}/", url_path(&r.path));
            let mut links = Vec::new();
            for (file, label) in [
                ("report.html", "report"),
                ("timeline.html", "timeline"),
                ("history.jsonl", "history"),
            ] {
                if store.join(&r.path).join(file).is_file() {
                    links.push(format!("<a href=\"{base}{file}\">{label}</a>"));
                }
            }
            links.push(format!("<a href=\"{base}\">files</a>"));
            h.push_str(&format!(
                "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&when(&r.stamp)),
                escape(&r.test),
                escape(&r.verdict),
                escape(&r.verdict),
                escape(&r.summary),
                escape(r.seed.as_deref().unwrap_or("")),
                escape(r.nemesis.as_deref().unwrap_or("")),
                links.join(" · ")
            ));
        }
        h.push_str("</table>");
    }
    h.push_str("</body></html>\n");
    h
}

/// Percent-encodes each segment of a relative path for a URL.
fn url_path(p: &str) -> String {
    p.split('/')
        .map(|seg| {
            seg.bytes()
                .map(|b| {
                    if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                        (b as char).to_string()
                    } else {
                        format!("%{b:02X}")
                    }
                })
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn index(State(store): State<Arc<PathBuf>>) -> Response {
    let page = tokio::task::spawn_blocking(move || index_html(&store, &runs(&store))).await;
    match page {
        Ok(p) => Html(p).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The file or directory that `/runs/<rel>` names, when it is inside `store`.
pub fn resolve(store: &Path, rel: &str) -> Option<PathBuf> {
    let rel = Path::new(rel.trim_end_matches('/'));
    if !rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return None;
    }
    let full = std::fs::canonicalize(store.join(rel)).ok()?;
    full.starts_with(store).then_some(full)
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found in the store\n").into_response()
}

async fn file(State(store): State<Arc<PathBuf>>, UrlPath(rel): UrlPath<String>) -> Response {
    let Some(path) = resolve(&store, &rel) else {
        return not_found();
    };
    if path.is_dir() {
        if !rel.ends_with('/') {
            // Relative links in reports need the trailing slash.
            return Redirect::permanent(&format!("/runs/{}/", url_path(&rel))).into_response();
        }
        let title = rel.trim_end_matches('/').to_string();
        return match tokio::task::spawn_blocking(move || listing(&store, &path, &title)).await {
            Ok(Some(page)) => Html(page).into_response(),
            _ => not_found(),
        };
    }
    let Ok(f) = tokio::fs::File::open(&path).await else {
        return not_found();
    };
    let len = f.metadata().await.map(|m| m.len()).ok();
    // No more than the length announced, even if the file grows meanwhile (a live history).
    use tokio::io::AsyncReadExt;
    let reader = f.take(len.unwrap_or(u64::MAX));
    let stream = futures::stream::unfold(reader, |mut f| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Some(n) = len {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    resp
}

/// The content type of a store file, by its extension (histories, logs and YAML as text).
/// What was collected from nodes (`nodes/...`) is always text: faultline did not write it.
pub fn content_type(path: &Path) -> &'static str {
    if path.components().any(|c| c.as_os_str() == "nodes") {
        return "text/plain; charset=utf-8";
    }
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "svg" => "image/svg+xml",
        "json" => "application/json",
        "xml" => "application/xml",
        "png" => "image/png",
        _ => "text/plain; charset=utf-8",
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// What it is, links resolved only inside the store.
    pub kind: EntryKind,
}

/// What a listed entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A directory (or a link to one inside the store).
    Dir,
    /// A file (or a link to one inside the store) and its size.
    File(u64),
    /// A link that leads out of the store, or nowhere: listed, never followed.
    Outside,
}

/// The entries of `dir` (inside `store`), directories first. Links are read with `lstat` and
/// resolved only when their target stays inside the store, so a listing never reports the
/// size or type of anything outside it.
pub fn entries(store: &Path, dir: &Path) -> Option<Vec<Entry>> {
    let mut entries: Vec<Entry> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(e.path()).ok();
            let meta = match meta {
                Some(m) if m.file_type().is_symlink() => std::fs::canonicalize(e.path())
                    .ok()
                    .filter(|t| t.starts_with(store))
                    .and_then(|t| std::fs::metadata(t).ok()),
                other => other,
            };
            let kind = match meta {
                Some(m) if m.is_dir() => EntryKind::Dir,
                Some(m) if m.is_file() => EntryKind::File(m.len()),
                _ => EntryKind::Outside,
            };
            Entry { name, kind }
        })
        .collect();
    let rank = |k: &EntryKind| match k {
        EntryKind::Dir => 0,
        _ => 1,
    };
    entries.sort_by(|a, b| {
        rank(&a.kind)
            .cmp(&rank(&b.kind))
            .then_with(|| a.name.cmp(&b.name))
    });
    Some(entries)
}

/// A directory's listing page, directories first, with sizes.
fn listing(store: &Path, dir: &Path, title: &str) -> Option<String> {
    let entries = entries(store, dir)?;
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{t}</title><style>body{{font:14px system-ui,sans-serif;margin:24px}}td{{padding:2px 12px}}</style></head><body><h1>{t}</h1><p><a href=\"/\">all runs</a> · <a href=\"../\">up</a></p><table>",
        t = escape(title)
    );
    for Entry { name, kind } in entries {
        let (slash, size) = match kind {
            EntryKind::Dir => ("/", String::new()),
            EntryKind::File(n) => ("", n.to_string()),
            EntryKind::Outside => {
                h.push_str(&format!(
                    "<tr><td>{}</td><td>link outside the store (not followed)</td></tr>",
                    escape(&name)
                ));
                continue;
            }
        };
        h.push_str(&format!(
            "<tr><td><a href=\"{}{slash}\">{}{slash}</a></td><td>{size}</td></tr>",
            url_path(&name),
            escape(&name),
        ));
    }
    h.push_str("</table></body></html>\n");
    Some(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_read_as_times() {
        assert_eq!(when("20261201T084750"), "2026-12-01 08:47:50 UTC");
        assert_eq!(when("20261201T084750-2"), "2026-12-01 08:47:50 UTC-2");
        assert_eq!(when("manual"), "manual");
    }

    #[test]
    fn only_paths_inside_the_store_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::fs::canonicalize(dir.path()).unwrap();
        std::fs::create_dir_all(store.join("t/1")).unwrap();
        std::fs::write(store.join("t/1/history.jsonl"), "").unwrap();
        std::os::unix::fs::symlink("t/1", store.join("latest")).unwrap();
        std::os::unix::fs::symlink("/etc", store.join("escape")).unwrap();
        assert_eq!(
            resolve(&store, "t/1/history.jsonl"),
            Some(store.join("t/1/history.jsonl"))
        );
        assert_eq!(resolve(&store, "latest/"), Some(store.join("t/1")));
        assert_eq!(resolve(&store, "../etc/passwd"), None);
        assert_eq!(resolve(&store, "t/../../etc/passwd"), None);
        assert_eq!(resolve(&store, "/etc/passwd"), None);
        assert_eq!(resolve(&store, "escape/passwd"), None);
        assert_eq!(resolve(&store, "t/1/missing"), None);
    }

    #[test]
    fn only_loopback_names_are_local() {
        for h in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:80",
            "LOCALHOST",
        ] {
            assert!(is_local_host(h), "{h}");
        }
        for h in [
            "",
            "evil.example:8080",
            "10.0.0.1",
            "127.0.0.1.evil.example",
            "[::2]",
        ] {
            assert!(!is_local_host(h), "{h}");
        }
    }

    #[test]
    fn node_files_are_text_whatever_their_name() {
        assert_eq!(
            content_type(Path::new("/s/t/1/report.html")),
            "text/html; charset=utf-8"
        );
        assert_eq!(
            content_type(Path::new("/s/t/1/nodes/n1/page.html")),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn url_paths_are_percent_encoded_per_segment() {
        assert_eq!(url_path("etcd-set/2026 <x>"), "etcd-set/2026%20%3Cx%3E");
    }
}
