//! The node helper: the faultline binary itself, uploaded to nodes, where its hidden `node`
//! subcommands set clocks (`node clock ...`) and emulate packet faults (`node netem-queue`),
//! so that nodes need no compiler, package or internet.
//!
//! What is uploaded is a stripped copy (debug symbols are most of a debug build and of no use
//! on nodes), made once per build of the binary and kept in a private directory of this
//! user's in the temporary directory, so that every fault does not copy, strip and hash a
//! large file again. A node gets it only when the SHA-256 of its copy differs.

use crate::remote::on_each;
use clusters::{Cluster, RemoteCommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Where the helper lives on nodes.
pub const HELPER_PATH: &str = "/var/lib/faultline/node-helper/faultline";

/// Cached copies not used for this long are removed when a new one is made.
const STALE_AFTER: Duration = Duration::from_secs(2 * 24 * 3600);

/// The file to upload for `source` and its SHA-256 (hex): a stripped copy when `strip` is
/// there, else a plain copy. Made once per build of `source` (its device, inode, size,
/// modification and change times) in a cache directory only this user can write, and reused
/// by every faultline process afterwards.
pub fn prepared(source: &Path) -> std::io::Result<(PathBuf, String)> {
    static LAST: Mutex<Option<(String, PathBuf, String)>> = Mutex::new(None);
    let meta = std::fs::metadata(source)?;
    let key = format!(
        "{:x}-{:x}-{:x}-{:x}.{:x}-{:x}.{:x}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    );
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((k, file, digest)) = last.as_ref() {
        if *k == key && file.exists() {
            return Ok((file.clone(), digest.clone()));
        }
    }
    let dir = cache_dir()?;
    let file = dir.join(&key);
    let sum = dir.join(format!("{key}.sha256"));
    let found = std::fs::read_to_string(&sum)
        .ok()
        .map(|d| d.trim().to_string())
        .filter(|d| d.len() == 64 && file.exists());
    let digest = match found {
        Some(d) => {
            // Marks it as used, so that the clean-up of old copies leaves it.
            let _ = std::fs::File::options()
                .write(true)
                .open(&file)
                .and_then(|f| f.set_modified(SystemTime::now()));
            d
        }
        None => {
            remove_stale(&dir);
            make(source, &dir, &key, &file, &sum)?
        }
    };
    *last = Some((key, file.clone(), digest.clone()));
    Ok((file, digest))
}

/// This user's cache directory in the temporary directory, made with mode 0700; refused when
/// it is a link, belongs to someone else or others can write it (what is uploaded from it
/// runs as root on the nodes).
fn cache_dir() -> std::io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let dir = std::env::temp_dir().join(format!("faultline-node-helper-{uid}"));
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a private directory of this user; remove it",
            dir.display()
        )));
    }
    Ok(dir)
}

/// Strips a copy of `source` into `file` and writes its digest into `sum`, each through a
/// new temporary file (never one that exists) and a rename, so that another process never
/// sees half of either.
fn make(source: &Path, dir: &Path, key: &str, file: &Path, sum: &Path) -> std::io::Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let create = |p: &Path| {
        std::fs::File::options()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(p)
    };
    let tmp = dir.join(format!(".{key}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::io::copy(&mut std::fs::File::open(source)?, &mut create(&tmp)?)?;
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
    let _ = std::fs::remove_file(&tmp_sum);
    create(&tmp_sum)?.write_all(format!("{digest}\n").as_bytes())?;
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
            // Installed as root's in a root-owned directory, never written into a file
            // someone else made (local nodes share the directory: each install renames a
            // complete file into place).
            clusters::install::install_file(cluster, n, &file, HELPER_PATH, 0o755)?;
            tracing::debug!(node = n, "node helper installed");
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
        // Asked again, nothing is redone (this process remembers it; another finds the digest file).
        assert_eq!(
            prepared(&src).expect("again"),
            (file.clone(), digest.clone())
        );
        assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), made);
        let dir_meta = std::fs::metadata(file.parent().unwrap()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(dir_meta.permissions().mode() & 0o077, 0, "a private cache");
        let _ = std::fs::remove_file(&file);
        let _ = std::fs::remove_file(format!("{}.sha256", file.display()));
    }
}
