//! The matrix of a campaign as cells: every database × workload × fault mix × option set ×
//! seed, less the exclusions. A cell's id names it the same on every machine (databases as
//! the campaign file writes them), so shards and `--compare` match cells by id.

use super::file::{CampaignFile, Exclude, Scalar};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One run of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// The database as the campaign file names it.
    pub db: String,
    /// The workload.
    pub workload: String,
    /// The fault mix.
    pub nemesis: String,
    /// The database options of its option set.
    pub options: BTreeMap<String, String>,
    /// The seed.
    pub seed: u64,
}

impl Cell {
    /// The configuration: the cell without its seed, `etcd/register/partition/read-mode=serializable`.
    pub fn config(&self) -> String {
        let mut out = format!("{}/{}/{}", self.db, self.workload, self.nemesis);
        for (k, v) in &self.options {
            out.push_str(&format!("/{k}={v}"));
        }
        out
    }

    /// The cell's id: its configuration and seed.
    pub fn id(&self) -> String {
        format!("{}/seed={}", self.config(), self.seed)
    }
}

/// Every cell of the matrix not excluded, in the file's order (databases outermost, seeds
/// innermost).
pub fn expand(file: &CampaignFile) -> Vec<Cell> {
    let option_sets: Vec<BTreeMap<String, String>> = if file.db_options.is_empty() {
        vec![BTreeMap::new()]
    } else {
        file.db_options.iter().map(texts).collect()
    };
    let mut cells = Vec::new();
    for db in &file.databases {
        for workload in &file.workloads {
            for nemesis in &file.nemesis {
                for options in &option_sets {
                    for seed in file.seed_list() {
                        let cell = Cell {
                            db: db.clone(),
                            workload: workload.clone(),
                            nemesis: nemesis.clone(),
                            options: options.clone(),
                            seed,
                        };
                        if !file.exclude.iter().any(|rule| excludes(rule, &cell)) {
                            cells.push(cell);
                        }
                    }
                }
            }
        }
    }
    cells
}

fn texts(map: &BTreeMap<String, Scalar>) -> BTreeMap<String, String> {
    map.iter().map(|(k, v)| (k.clone(), v.text())).collect()
}

/// Whether `rule` leaves `cell` out: it matches everything the rule names.
fn excludes(rule: &Exclude, cell: &Cell) -> bool {
    let same = |want: &Option<String>, have: &str| want.as_deref().is_none_or(|w| w == have);
    same(&rule.db, &cell.db)
        && same(&rule.workload, &cell.workload)
        && same(&rule.nemesis, &cell.nemesis)
        && rule.seed.is_none_or(|s| s == cell.seed)
        && rule.db_options.as_ref().is_none_or(|opts| {
            texts(opts)
                .iter()
                .all(|(k, v)| cell.options.get(k) == Some(v))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::file::parse;

    const FILE: &str = "
time-limit: 10s
databases: [etcd]
workloads: [register, cas-register]
nemesis: [partition, 'partition,kill']
db-options:
  - {read-mode: linearizable}
  - {read-mode: serializable}
seeds: 2
exclude:
  - {workload: cas-register, nemesis: 'partition,kill'}
  - {db-options: {read-mode: serializable}, seed: 2}
";

    #[test]
    fn the_matrix_expands_less_its_exclusions() {
        let cells = expand(&parse(FILE).expect("parse"));
        // 1 × 2 × 2 × 2 × 2 = 16; the first rule leaves out 4, the second 4 of the 12 left
        // less those already out (cas-register/partition,kill/serializable/seed 2): 3.
        assert_eq!(cells.len(), 16 - 4 - 3);
        assert!(cells
            .iter()
            .all(|c| !(c.workload == "cas-register" && c.nemesis == "partition,kill")));
        assert!(cells
            .iter()
            .all(|c| !(c.options["read-mode"] == "serializable" && c.seed == 2)));
        let ids: std::collections::BTreeSet<_> = cells.iter().map(Cell::id).collect();
        assert_eq!(ids.len(), cells.len(), "ids are distinct");
        assert_eq!(
            cells[0].id(),
            "etcd/register/partition/read-mode=linearizable/seed=1"
        );
        assert_eq!(
            cells[0].config(),
            "etcd/register/partition/read-mode=linearizable"
        );
    }

    #[test]
    fn no_option_sets_is_one_empty_set() {
        let f = parse(
            "time-limit: 5s\ndatabases: [etcd]\nworkloads: [set]\nnemesis: [none]\nseeds: [7, 9]\n",
        )
        .expect("parse");
        let cells = expand(&f);
        assert_eq!(cells.len(), 2);
        assert_eq!(cells[1].id(), "etcd/set/none/seed=9");
    }
}
