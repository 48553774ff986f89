//! The store layout of DESIGN.md: `STORE/<test-name>/<YYYYmmddTHHMMSS>/`, with `STORE/latest`
//! pointing at the newest run (the run's test.yaml is written by `plan::TestPlan::write`).

use anyhow::{anyhow, Context};
use std::path::{Path, PathBuf};

/// Creates the directory of a new run of `test_name` and points `STORE/latest` at it.
///
/// Safe when several runs start at once into one store: the run directory is made with
/// `create_dir`, which fails if it exists, and the next suffix (`-2`, `-3`, ...) is tried; `latest`
/// is replaced atomically (a symlink made under a unique temporary name, then renamed over it),
/// so it always exists and points at one complete run directory.
pub fn create_run(store: &Path, test_name: &str) -> anyhow::Result<PathBuf> {
    if test_name.is_empty() || test_name.contains('/') || test_name.starts_with('.') {
        return Err(anyhow!(
            "test name {test_name:?}: expected a plain file name"
        ));
    }
    let stamp = stamp();
    let parent = store.join(test_name);
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut n = 1;
    let dir = loop {
        let name = if n == 1 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = parent.join(name);
        match std::fs::create_dir(&dir) {
            Ok(()) => break dir,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100_000 => n += 1,
            Err(e) => return Err(e).with_context(|| format!("creating {}", dir.display())),
        }
    };
    let target = dir.strip_prefix(store).unwrap_or(&dir).to_path_buf();
    point_latest(store, &target)?;
    Ok(dir)
}

/// The time now as the store names runs: `20261125T154000` (UTC).
pub fn stamp() -> String {
    let text = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    // 2026-11-25T15:40:00Z -> 20261125T154000
    let text: String = text.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    text.trim_end_matches('Z').to_string()
}

/// Points `STORE/latest` at `target` (relative to the store) atomically: a symlink under a
/// temporary name unique to this process and call, renamed over `latest`.
fn point_latest(store: &Path, target: &Path) -> anyhow::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let latest = store.join("latest");
    let tmp = store.join(format!(
        ".latest.{}.{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    // Left by a process that died between symlink and rename, with this one's pid.
    let _ = std::fs::remove_file(&tmp);
    #[cfg(unix)]
    std::os::unix::fs::symlink(target, &tmp)
        .with_context(|| format!("linking {}", tmp.display()))?;
    std::fs::rename(&tmp, &latest).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        anyhow!("linking {}: {e}", latest.display())
    })
}

/// The longest node component kept as it is; longer names are cut and end in a hash.
const MAX_COMPONENT: usize = 120;

/// A node's name as one safe path component of the store: characters other than ASCII letters,
/// digits, `-`, `_` and `.` (and a leading `.`) are percent-encoded, `%` included, so that
/// distinct names stay distinct and no name (`..`, `/tmp/x`, `../../etc`) leaves `nodes/`.
/// Such names are valid ssh_config `Host` aliases, so they are encoded, not refused. Names
/// longer than a file name may be are cut and end in a hash of the whole name.
pub fn node_component(node: &str) -> String {
    let mut out = String::with_capacity(node.len());
    for (i, b) in node.bytes().enumerate() {
        let plain = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if plain {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        return "%00".to_string();
    }
    if out.len() > MAX_COMPONENT {
        // FNV-1a: stable across builds and platforms, enough to keep long names apart.
        let hash = node.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        out.truncate(MAX_COMPONENT - 17);
        out.push_str(&format!("~{hash:016x}"));
    }
    out
}

/// The directory of a run's files collected from `node`: `RUN/nodes/<node_component(node)>`.
/// Every local path derived from a node's name goes through here.
pub fn node_dir(run: &Path, node: &str) -> PathBuf {
    run.join("nodes").join(node_component(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many runs starting at once into one store each get their own directory, and `latest`
    /// is always a link to one of them ("linking .../latest: File exists" before).
    #[test]
    fn concurrent_runs_get_distinct_directories() {
        let store = tempfile::tempdir().expect("tempdir");
        let threads = 16;
        let rounds = 100;
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(threads));
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let store = store.path().to_path_buf();
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    let mut dirs = Vec::new();
                    for round in 0..rounds {
                        barrier.wait();
                        let name = format!("t{round}");
                        dirs.push(create_run(&store, &name).map_err(|e| format!("{e:#}")));
                    }
                    dirs
                })
            })
            .collect();
        let mut all = std::collections::HashSet::new();
        for h in handles {
            for dir in h.join().expect("thread") {
                let dir = dir.expect("create_run");
                assert!(all.insert(dir.clone()), "{} given twice", dir.display());
                // Each run directory is its own: nothing else was made inside it.
                assert_eq!(std::fs::read_dir(&dir).expect("list").count(), 0);
            }
        }
        assert_eq!(all.len(), threads * rounds);
        let latest = store.path().join("latest");
        let target = std::fs::read_link(&latest).expect("latest is a link");
        assert!(all.contains(&store.path().join(target)));
        let names: Vec<String> = std::fs::read_dir(store.path())
            .expect("list")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), rounds + 1, "no temporary links left");
    }

    /// Hostile node names (ssh_config aliases may be anything) stay one component under
    /// `nodes/`, and distinct names stay distinct.
    #[test]
    fn node_names_stay_inside_the_run() {
        let run = tempfile::tempdir().expect("tempdir");
        let long = "x".repeat(300);
        let long2 = format!("{}y", "x".repeat(299));
        let names = [
            "n1",
            "10.0.0.1",
            "db-1.example.com",
            "../../../../tmp/escape",
            "/tmp/absnode",
            "..",
            ".",
            "",
            "a/b",
            "a%2Fb",
            "n1\0",
            ".hidden",
            "h\u{e9}te",
            &long,
            &long2,
        ];
        let mut seen = std::collections::HashSet::new();
        for name in names {
            let dir = node_dir(run.path(), name);
            let rel = dir
                .strip_prefix(run.path().join("nodes"))
                .expect("under nodes/");
            let parts: Vec<_> = rel.components().collect();
            assert_eq!(parts.len(), 1, "{name:?} -> {}", dir.display());
            assert!(
                matches!(parts[0], std::path::Component::Normal(_)),
                "{name:?} -> {}",
                dir.display()
            );
            let c = node_component(name);
            assert!(
                !c.starts_with('.') && c.len() <= MAX_COMPONENT,
                "{name:?} -> {c}"
            );
            std::fs::create_dir_all(&dir).expect("create");
            std::fs::write(dir.join("etcd.log"), name).expect("write");
            assert!(seen.insert(c), "{name:?} collides");
        }
        assert_eq!(node_component("n1"), "n1");
        assert_eq!(node_component("../x"), "%2E.%2Fx");
        assert_eq!(
            std::fs::read_dir(run.path().join("nodes"))
                .expect("list")
                .count(),
            names.len()
        );
        assert_eq!(
            std::fs::read_dir(run.path()).expect("list").count(),
            1,
            "only nodes/ was made in the run"
        );
    }
}
