//! Running privileged commands on nodes and turning their failures into errors that name the
//! node, with retries for heal.

use crate::NemesisError;
use clusters::{Cluster, Output, RemoteCommand};
use std::collections::BTreeMap;
use std::time::Duration;

/// Runs `script` with `sh -c` as root on `node`; a non-zero exit is an error naming `what`.
pub(crate) fn root_script(
    cluster: &Cluster,
    node: &str,
    what: &str,
    script: &str,
) -> Result<Output, NemesisError> {
    let out = cluster.exec(node, &RemoteCommand::script(script).sudo())?;
    if out.success() {
        Ok(out)
    } else {
        Err(NemesisError::Command {
            node: node.to_string(),
            command: what.to_string(),
            status: out.status,
            stderr: out.stderr_text().trim().to_string(),
        })
    }
}

/// Runs `f` on each node in parallel: every node's value when all succeed, else one error
/// naming each node that failed.
pub(crate) fn collect_each<T: Send>(
    cluster: &Cluster,
    nodes: &[String],
    f: impl Fn(&str) -> Result<T, NemesisError> + Sync,
) -> Result<BTreeMap<String, T>, NemesisError> {
    let (values, errors) = each(cluster, nodes, f);
    all_ok(errors).map(|()| values)
}

/// Runs `f` on each node in parallel; collects the per-node errors.
pub(crate) fn on_each(
    cluster: &Cluster,
    nodes: &[String],
    f: impl Fn(&str) -> Result<(), NemesisError> + Sync,
) -> BTreeMap<String, String> {
    each(cluster, nodes, f).1
}

/// Runs `f` on each node in parallel: the values of the nodes where it succeeded and the
/// errors of those where it failed.
pub(crate) fn each<T: Send>(
    cluster: &Cluster,
    nodes: &[String],
    f: impl Fn(&str) -> Result<T, NemesisError> + Sync,
) -> (BTreeMap<String, T>, BTreeMap<String, String>) {
    let mut values = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for r in cluster.on_nodes(nodes, |n| Ok(f(n))) {
        let message = match r.result {
            Ok(Ok(v)) => {
                values.insert(r.node, v);
                continue;
            }
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        errors.insert(r.node.clone(), without_node(&r.node, &message));
    }
    (values, errors)
}

/// Like [`on_each`], but each node's step is tried up to three times (after 0.2 s and 1 s)
/// before its error is reported: heal must not give up on a node over one dropped packet.
pub(crate) fn on_each_retrying(
    cluster: &Cluster,
    nodes: &[String],
    f: impl Fn(&str) -> Result<(), NemesisError> + Sync,
) -> BTreeMap<String, String> {
    each_retrying(cluster, nodes, f).1
}

/// Like [`on_each_retrying`], also keeping the value of each node where `f` succeeded.
pub(crate) fn each_retrying<T: Send>(
    cluster: &Cluster,
    nodes: &[String],
    f: impl Fn(&str) -> Result<T, NemesisError> + Sync,
) -> (BTreeMap<String, T>, BTreeMap<String, String>) {
    each(cluster, nodes, |n| {
        let mut delays = [Duration::from_millis(200), Duration::from_secs(1)].into_iter();
        loop {
            match f(n) {
                Ok(v) => return Ok(v),
                Err(e) => match delays.next() {
                    Some(d) => {
                        tracing::warn!(node = n, error = %e, "heal step failed; retrying");
                        std::thread::sleep(d);
                    }
                    None => return Err(e),
                },
            }
        }
    })
}

/// Turns per-node errors into one error (or success when there are none).
pub(crate) fn all_ok(errors: BTreeMap<String, String>) -> Result<(), NemesisError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(NemesisError::Nodes(errors.into_iter().collect()))
    }
}

/// `message` without a leading `node: `: errors are listed under their node's name, and many
/// already start with it.
fn without_node(node: &str, message: &str) -> String {
    message
        .strip_prefix(node)
        .and_then(|m| m.strip_prefix(": "))
        .unwrap_or(message)
        .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_node_is_named_once() {
        assert_eq!(
            super::without_node("n1", "n1: `x` exited 1"),
            "`x` exited 1"
        );
        assert_eq!(super::without_node("n1", "n10: down"), "n10: down");
        assert_eq!(super::without_node("n1", "timed out"), "timed out");
    }
}
