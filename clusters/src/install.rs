//! Installing a file on a node safely, as root, whatever the node's other users do.
//!
//! A plain SFTP upload into a shared directory writes into whatever file is there: a file
//! an unprivileged user pre-created (mode 666) keeps its owner, so that user would own a binary
//! root then runs, and a symlink there redirects the write. [`install_file`] instead:
//!
//! 1. makes a fresh private directory on the node with `mktemp -d` (0700, the SSH user's, an
//!    unpredictable name) and uploads into it with an exclusive create;
//! 2. as root, checks that the destination's directory is a directory owned by root that no
//!    one else can write (not a link), creates the new file there exclusively
//!    (`mktemp` in that directory), copies the upload into it, sets owner root and the mode,
//!    renames it over the destination (a rename replaces a link, never follows it), removes
//!    the private directory, and verifies owner, mode and type of what is now at the
//!    destination.
//!
//! Every path reaches the node quoted ([`crate::quote`]).

use crate::{quote, Cluster, RemoteCommand, SshError};
use std::path::Path;

/// Installs `local` on `node` at `dest` (an absolute path), owned by root with `mode`.
/// The destination's directory is created (root's, 0755) when missing; one that is a link,
/// not root's, or writable by others is refused.
pub fn install_file(
    cluster: &Cluster,
    node: &str,
    local: &Path,
    dest: &str,
    mode: u32,
) -> Result<(), SshError> {
    let fail = |message: String| SshError::Transfer {
        node: node.to_string(),
        path: dest.to_string(),
        message,
    };
    if !dest.starts_with('/') || dest.ends_with('/') || dest.contains("/../") {
        return Err(fail("expected an absolute file path".into()));
    }
    let out = cluster.exec(
        node,
        &RemoteCommand::new("mktemp").args(["-d", "/tmp/faultline-upload.XXXXXXXX"]),
    )?;
    let private = out.stdout_text().trim().to_string();
    if !out.success() || !private.starts_with("/tmp/faultline-upload.") {
        return Err(fail(format!(
            "could not make a private upload directory: {}",
            out.stderr_text().trim()
        )));
    }
    let staged = format!("{private}/file");
    let uploaded = cluster.upload_new(node, local, Path::new(&staged));
    let script = format!(
        r#"set -u
src={staged}; dest={dest}; mode={mode:o}; private={private}
cleanup() {{ rm -rf -- "$private"; }}
refuse() {{ echo "$*" >&2; cleanup; exit 3; }}
[ -f "$src" ] && [ ! -L "$src" ] || refuse "the uploaded file is gone or not a regular file"
dir=$(dirname -- "$dest")
[ -e "$dir" ] || mkdir -p -m 755 -- "$dir" || refuse "cannot create $dir"
[ -d "$dir" ] && [ ! -L "$dir" ] || refuse "$dir is not a directory (or is a link): refusing to install there"
[ "$(stat -c %u -- "$dir")" = 0 ] || refuse "$dir belongs to uid $(stat -c %u -- "$dir"), not root: refusing to install there"
case "$(stat -c %A -- "$dir")" in
  ?????w????|????????w?) refuse "$dir is writable by others ($(stat -c %A -- "$dir")): refusing to install there" ;;
esac
new=$(mktemp -- "$dir/.faultline-new.XXXXXXXX") || refuse "cannot create a file in $dir"
cat -- "$src" > "$new" && chown 0:0 -- "$new" && chmod "$mode" -- "$new" && mv -f -- "$new" "$dest" || {{ rm -f -- "$new"; refuse "cannot install $dest"; }}
cleanup
[ -f "$dest" ] && [ ! -L "$dest" ] && [ "$(stat -c %u:%a -- "$dest")" = "0:$mode" ] || {{ echo "$dest is not root's with mode $mode after installing" >&2; exit 3; }}
"#,
        staged = quote(&staged),
        dest = quote(dest),
        private = quote(&private),
    );
    let out = cluster.exec(node, &RemoteCommand::script(script).sudo());
    // The upload's own error first: the script then only cleaned up.
    uploaded?;
    let out = out?;
    if out.success() {
        Ok(())
    } else {
        Err(fail(out.stderr_text().trim().to_string()))
    }
}
