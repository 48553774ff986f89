//! `faultline serve`: the store over HTTP. Pages read the store's index (brought up to date
//! with the run directories on each request, [`Index::open_current`]): `/` lists the runs,
//! newest first, filtered and a page at a time (`list`); `/trends` shows each configuration's
//! verdicts over time, regressions and flaky configurations first (`trends`); `/compare`
//! puts two runs side by side (`compare`). `/runs/<path>` serves files and directory
//! listings from inside the store, and nothing outside it (`files`). A connection that does
//! not finish its request's headers, or stays idle, within `--idle-timeout` is closed
//! (`conn`).

mod compare;
mod conn;
mod files;
mod html;
mod list;
mod trends;

pub use files::{content_type, entries, resolve, Entry, EntryKind};

use crate::cli::ServeArgs;
use crate::exit::{bad_input, internal, Exit, Failure};
use crate::index::Index;
use anyhow::anyhow;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

/// The store being served (canonical).
pub type Store = Arc<PathBuf>;

/// Why a page could not be made.
#[derive(Debug)]
pub enum PageError {
    /// What the request named is not in the store.
    NotFound(String),
    /// The index or a run could not be read.
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> PageError {
        PageError::Internal(e)
    }
}

/// Makes a page with `make` (which reads the store and its index) on a blocking thread.
async fn blocking(make: impl FnOnce() -> Result<String, PageError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(make).await {
        Ok(Ok(page)) => Html(page).into_response(),
        Ok(Err(PageError::NotFound(what))) => {
            (StatusCode::NOT_FOUND, format!("{what}\n")).into_response()
        }
        Ok(Err(PageError::Internal(e))) => {
            tracing::warn!("making a page: {e:#}");
            (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}\n")).into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

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
    // The index is made (or brought up to date) before the first page asks for it.
    if let Err(e) = Index::open_current(&store) {
        tracing::warn!("the store's index: {e:#}");
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
            .route("/", get(list::handler))
            .route("/trends", get(trends::handler))
            .route("/compare", get(compare::handler))
            .route("/runs/", get(|| async { Redirect::permanent("/") }))
            .route("/runs/{*path}", get(files::file))
            .with_state(Arc::new(store))
            .layer(axum::middleware::from_fn_with_state(
                addr.ip().is_loopback(),
                only_local_names,
            ));
        conn::accept(listener, app, args.idle_timeout).await;
        Ok(Exit::Valid)
    })
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

/// Opens the store's index, up to date with its run directories.
fn open_index(store: &std::path::Path) -> Result<Index, PageError> {
    Ok(Index::open_current(store)?)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
