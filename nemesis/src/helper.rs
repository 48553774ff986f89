//! The node helper: the faultline binary itself, uploaded to nodes, where its hidden `node`
//! subcommands set clocks (`node clock ...`) and emulate packet faults (`node netem-queue`),
//! so that nodes need no compiler, package or internet.
//!
//! What is uploaded is a stripped copy (debug symbols are most of a debug build and of no use
//! on nodes), made once per build of the binary and kept in this machine's temporary
//! directory, so that every fault does not copy, strip and hash a large file again. A node
//! gets it only when the SHA-256 of its copy differs.

use crate::remote::{on_each, root_script};
use clusters::{quote, Cluster, RemoteCommand};
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Where the helper lives on nodes.
pub const HELPER_PATH: &str = "/var/tmp/faultline-node-helper";

/// Cached stripped copies not used for this long are removed when a new one is made.
const STALE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// The file to upload for `source` and its SHA-256 (hex): a stripped copy when `strip` is
/// there, else `source` itself. Made once per build of `source` (its inode, size and
/// modification time) and reused by every faultline process afterwards.
pub fn prepared(source: &Path) -> std::io::Result<(PathBuf, String)> {
    static LAST: Mutex<Option<(PathBuf, PathBuf, String)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((src, file, digest)) = last.as_ref() {
        if src == source && file.exists() {
            return Ok((file.clone(), digest.clone()));
        }
    }
    let meta = std::fs::metadata(source)?;
    let mtime = meta
        .modified()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let key = format!("{:x}-{:x}-{mtime:x}", meta.ino(), meta.len());
    let dir = std::env::temp_dir().join("faultline-node-helper");
    std::fs::create_dir_all(&dir)?;
    let file = dir.join(&key);
    let sum = dir.join(format!("{key}.sha256"));
    let found = std::fs::read_to_string(&sum)
        .ok()
        .map(|d| d.trim().to_string())
        .filter(|d| d.len() == 64 && file.exists());
    let digest = match found {
        Some(d) => d,
        None => {
            remove_stale(&dir);
            make(source, &dir, &key, &file, &sum)?
        }
    };
    *last = Some((source.to_path_buf(), file.clone(), digest.clone()));
    Ok((file, digest))
}

/// Strips a copy of `source` into `file` and writes its digest into `sum`, each through a
/// temporary name and a rename, so that another process never sees half of either.
fn make(source: &Path, dir: &Path, key: &str, file: &Path, sum: &Path) -> std::io::Result<String> {
    let tmp = dir.join(format!(".{key}.{}", std::process::id()));
    std::fs::copy(source, &tmp)?;
    let stripped = std::process::Command::new("strip")
        .arg(&tmp)
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        tracing::debug!("strip failed or is missing; the node helper is uploaded unstripped");
    }
    let digest = {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(&tmp)?)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    std::fs::rename(&tmp, file)?;
    let tmp_sum = dir.join(format!(".{key}.sha256.{}", std::process::id()));
    std::fs::write(&tmp_sum, format!("{digest}\n"))?;
    std::fs::rename(&tmp_sum, sum)?;
    Ok(digest)
}

/// Removes cached copies (and leftovers of interrupted ones) older than [`STALE_AFTER`].
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Uploads the helper (a prepared copy of `helper`, normally this faultline binary) to each
/// node unless the same file (by SHA-256) is there already.
pub fn install(cluster: &Cluster, nodes: &[String], helper: &Path) -> BTreeMap<String, String> {
    let (file, digest) = match prepared(helper) {
        Ok(p) => p,
        Err(e) => {
            return nodes
                .iter()
                .map(|n| {
                    let msg = format!("cannot prepare the node helper {}: {e}", helper.display());
                    (n.clone(), msg)
                })
                .collect()
        }
    };
    on_each(cluster, nodes, |n| {
        let out = cluster.exec(
            n,
            &RemoteCommand::script(format!("sha256sum {HELPER_PATH} 2>/dev/null || true")),
        )?;
        if !out.stdout_text().starts_with(&digest) {
            // Named per node: local nodes share this directory.
            let tmp = format!("{HELPER_PATH}.{}.{n}", std::process::id());
            cluster.upload(n, &file, Path::new(&tmp))?;
            tracing::debug!(node = n, "node helper installed");
            root_script(
                cluster,
                n,
                "install node helper",
                &format!(
                    "chmod 755 {tmp} && mv -f {tmp} {HELPER_PATH}",
                    tmp = quote(&tmp)
                ),
            )?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_copy_is_made_once_and_its_digest_is_the_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("helper");
        std::fs::write(
            &src,
            b"not an ELF file, so strip fails and it is kept as is",
        )
        .unwrap();
        let (file, digest) = prepared(&src).expect("prepared");
        assert_ne!(file, src);
        use sha2::Digest;
        let want: String = sha2::Sha256::digest(std::fs::read(&file).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(digest, want);
        let made = std::fs::metadata(&file).unwrap().modified().unwrap();
        // Asked again (also by another process, which finds the digest file), nothing is redone.
        assert_eq!(
            prepared(&src).expect("again"),
            (file.clone(), digest.clone())
        );
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), made);
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(file.with_extension("sha256"));
    }
}
