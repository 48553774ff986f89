//! Records on the nodes themselves of what undoes the faults applied to them, so that
//! `faultline heal` can undo them even when the controller's journal is lost.
//!
//! Partitions and packet faults leave traces that heal's sweep finds by itself (faultline's
//! iptables chains, its qdiscs, its emulator). A paused process, a killed database and a
//! stopped time-sync service leave none that could be told from anyone else's, so before such
//! a fault is applied, each target node gets the part of its [`Undo`] that concerns it
//! ([`Undo::on_node`]) as a file in [`DIR`] (root's, mode 0700, on the node's `/run`, so
//! that a reboot, which ends paused processes and strobes anyway, clears it). Heal removes
//! the records of what it undid; heal's sweep undoes and removes whatever records are left.
//!
//! A record's file is named by the hash of its content, so that the controller can remove
//! exactly the records of a fault it healed without keeping anything else.

use crate::fault::{NodeErrors, Undo};
use crate::remote::{each_retrying, on_each, on_each_retrying, root_script};
use crate::NemesisError;
use clusters::{quote, Cluster};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Where records are kept on a node.
pub const DIR: &str = "/run/faultline/faults";

/// One record found on a node: its file name, and the undo it holds (or why it could not be
/// read).
pub type Record = (String, Result<Undo, String>);

/// The records that `undo` leaves on its nodes: node to the part of the undo that concerns
/// it (none for undos whose traces heal's sweep finds by itself).
pub fn records_of(undo: &Undo) -> BTreeMap<String, Undo> {
    undo.nodes()
        .into_iter()
        .filter_map(|n| undo.on_node(&n).map(|u| (n, u)))
        .collect()
}

/// The file name of a record.
fn file_name(undo: &Undo) -> Result<String, NemesisError> {
    let json = json(undo)?;
    let hash = Sha256::digest(json.as_bytes());
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    Ok(format!("{hex}.json"))
}

fn json(undo: &Undo) -> Result<String, NemesisError> {
    serde_json::to_string(undo).map_err(|e| NemesisError::BadFault(format!("undo record: {e}")))
}

/// Writes each node's record (before the fault is applied). Returns the nodes where it
/// failed.
pub(crate) fn write(cluster: &Cluster, records: &BTreeMap<String, Undo>) -> NodeErrors {
    let nodes: Vec<String> = records.keys().cloned().collect();
    on_each(cluster, &nodes, |n| {
        let undo = &records[n];
        let file = format!("{DIR}/{}", file_name(undo)?);
        let script = format!(
            "umask 077\nmkdir -p {DIR} && chmod 700 {DIR}\n\
             printf '%s\\n' {} > {tmp} && mv {tmp} {file}\n",
            quote(&json(undo)?),
            tmp = quote(&format!("{file}.tmp")),
            file = quote(&file),
        );
        root_script(cluster, n, "record the undo on the node", &script).map(|_| ())
    })
}

/// Removes each node's record (after its fault is undone), retrying.
pub(crate) fn remove(cluster: &Cluster, records: &BTreeMap<String, Undo>) -> NodeErrors {
    let nodes: Vec<String> = records.keys().cloned().collect();
    on_each_retrying(cluster, &nodes, |n| {
        let file = format!("{DIR}/{}", file_name(&records[n])?);
        root_script(
            cluster,
            n,
            "remove the undo record",
            &format!("rm -f {}", quote(&file)),
        )
        .map(|_| ())
    })
}

/// Removes the record `file` (a name that [`read`] returned) from `node`.
pub(crate) fn remove_file(cluster: &Cluster, node: &str, file: &str) -> Result<(), NemesisError> {
    if file.contains('/') || file.starts_with('.') {
        return Err(NemesisError::BadFault(format!("bad record name {file:?}")));
    }
    root_script(
        cluster,
        node,
        "remove the undo record",
        &format!("rm -f {}", quote(&format!("{DIR}/{file}"))),
    )
    .map(|_| ())
}

/// The records on each of `nodes` (retrying), and the nodes that could not be asked.
pub fn read(cluster: &Cluster, nodes: &[String]) -> (BTreeMap<String, Vec<Record>>, NodeErrors) {
    let script = format!(
        "for f in {DIR}/*.json; do\n\
         \x20 [ -f \"$f\" ] || continue\n\
         \x20 printf '%s\\t' \"${{f##*/}}\"; tr -d '\\n' < \"$f\"; echo\n\
         done\n"
    );
    each_retrying(cluster, nodes, |n| {
        let out = root_script(cluster, n, "read undo records", &script)?;
        Ok(parse(&out.stdout_text()))
    })
}

/// Parses `NAME<TAB>JSON` lines.
fn parse(text: &str) -> Vec<Record> {
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(name, json)| {
            (
                name.to_string(),
                serde_json::from_str::<Undo>(json).map_err(|e| e.to_string()),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::{Restart, Resume};

    #[test]
    fn records_hold_each_nodes_part_and_are_named_by_content() {
        let pause: Undo = Resume {
            pids: [("n1".to_string(), vec![7, 8]), ("n2".to_string(), vec![9])].into(),
        }
        .into();
        let r = records_of(&pause);
        assert_eq!(
            r["n2"],
            Resume {
                pids: [("n2".to_string(), vec![9])].into()
            }
            .into()
        );
        assert_ne!(file_name(&r["n1"]).unwrap(), file_name(&r["n2"]).unwrap());
        assert_eq!(
            file_name(&r["n1"]).unwrap(),
            file_name(&records_of(&pause)["n1"]).unwrap()
        );
        let kill: Undo = Restart {
            db: "etcd".into(),
            nodes: vec!["n3".into()],
            source: None,
        }
        .into();
        assert_eq!(records_of(&kill)["n3"], kill);
        let partition: Undo = crate::partition::PartitionUndo {
            nodes: vec!["n1".into()],
        }
        .into();
        assert!(records_of(&partition).is_empty());
        let text = format!(
            "{}\t{}\nbad.json\t{{\n",
            file_name(&kill).unwrap(),
            json(&kill).unwrap()
        );
        let parsed = parse(&text);
        assert_eq!(parsed[0].1, Ok(kill));
        assert!(parsed[1].1.is_err());
    }
}
