//! The store's files under `/runs/`: files streamed with their content type, directories
//! listed, and nothing outside the store (`..` is refused, symbolic links are followed only
//! when they stay in the store, and listings show a link leading out as such).

use super::html::url_path;
use super::Store;
use crate::timeline::escape;
use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::path::{Component, Path, PathBuf};

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

pub fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found in the store\n").into_response()
}

pub async fn file(State(store): State<Store>, UrlPath(rel): UrlPath<String>) -> Response {
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
}
