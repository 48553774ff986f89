//! The store layout of DESIGN.md: `STORE/<test-name>/<YYYYmmddTHHMMSS>/`, with `STORE/latest`
//! pointing at the newest run (the run's test.yaml is written by `plan::TestPlan::write`).

use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};

/// Creates the directory of a new run of `test_name` and points `STORE/latest` at it.
pub fn create_run(store: &Path, test_name: &str) -> anyhow::Result<PathBuf> {
    if test_name.is_empty() || test_name.contains('/') || test_name.starts_with('.') {
        return Err(anyhow!(
            "test name {test_name:?}: expected a plain file name"
        ));
    }
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // 2026-11-25T15:40:00Z -> 20261125T154000
    let stamp: String = stamp
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let stamp = stamp.trim_end_matches('Z').to_string();
    let mut dir = store.join(test_name).join(&stamp);
    let mut n = 1;
    while dir.exists() {
        n += 1;
        dir = store.join(test_name).join(format!("{stamp}-{n}"));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let latest = store.join("latest");
    let target = dir.strip_prefix(store).unwrap_or(&dir).to_path_buf();
    let _ = std::fs::remove_file(&latest);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&target, &latest)
        .with_context(|| format!("linking {}", latest.display()))?;
    Ok(dir)
}

/// The local directory of `node`'s files in a run: `DIR/nodes/<node>/`.
pub fn node_dir(run: &Path, node: &str) -> PathBuf {
    run.join("nodes").join(node)
}
