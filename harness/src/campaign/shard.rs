//! Shards: `--shard I/N` runs the I-th of N shares of a campaign's cells, so that a job
//! scheduler's array (a Kubernetes Indexed Job, a Slurm job array, a CI matrix) spreads one
//! campaign over machines. Every cell is in exactly one shard, the shares differ by at most
//! one cell, and the assignment depends only on the cells' ids, so every machine computes
//! the same one from the same campaign file.

use anyhow::{anyhow, bail};

/// One share of the cells: `index` from 1 to `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which share, from 1.
    pub index: usize,
    /// How many shares.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N`, or `auto/N` with I from the environment through `env`:
    /// `JOB_COMPLETION_INDEX` (Kubernetes, from 0), else `SLURM_ARRAY_TASK_ID` (less
    /// `SLURM_ARRAY_TASK_MIN`, so that `--array=1-4` and `--array=0-3` both work).
    pub fn parse(text: &str, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Shard> {
        let (i, n) = text
            .split_once('/')
            .ok_or_else(|| anyhow!("--shard {text:?}: expected I/N or auto/N"))?;
        let count: usize = n
            .parse()
            .map_err(|_| anyhow!("--shard {text:?}: N must be a number"))?;
        if count == 0 {
            bail!("--shard {text:?}: N must be at least 1");
        }
        let index = if i == "auto" {
            from_env(&env).ok_or_else(|| {
                anyhow!("--shard auto/{count}: neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set to a number")
            })? + 1
        } else {
            i.parse()
                .map_err(|_| anyhow!("--shard {text:?}: I must be a number or auto"))?
        };
        if !(1..=count).contains(&index) {
            bail!("--shard {text:?}: I is {index}, expected 1 to {count}");
        }
        Ok(Shard { index, count })
    }

    /// The positions (in `ids`) of the cells this shard runs: the cells ordered by a hash
    /// of their id (then the id), dealt round robin.
    pub fn select(&self, ids: &[String]) -> Vec<usize> {
        let mut order: Vec<usize> = (0..ids.len()).collect();
        order.sort_by(|&a, &b| (fnv1a(&ids[a]), &ids[a]).cmp(&(fnv1a(&ids[b]), &ids[b])));
        let mut mine: Vec<usize> = order
            .into_iter()
            .enumerate()
            .filter(|(rank, _)| rank % self.count == self.index - 1)
            .map(|(_, i)| i)
            .collect();
        mine.sort_unstable();
        mine
    }

    /// The shard's directory name in the campaign's directory: `shard-I-of-N`.
    pub fn dir_name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// The 0-based index of this job in its array, from a job scheduler's environment.
fn from_env(env: &impl Fn(&str) -> Option<String>) -> Option<usize> {
    let num = |k: &str| env(k).and_then(|v| v.trim().parse::<usize>().ok());
    if let Some(i) = num("JOB_COMPLETION_INDEX") {
        return Some(i);
    }
    let id = num("SLURM_ARRAY_TASK_ID")?;
    id.checked_sub(num("SLURM_ARRAY_TASK_MIN").unwrap_or(0))
}

/// FNV-1a, 64 bits: stable across builds and platforms.
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| format!("etcd/register/partition/seed={i}"))
            .collect()
    }

    #[test]
    fn every_cell_is_in_exactly_one_shard() {
        for n_cells in [0, 1, 4, 7, 50] {
            let ids = ids(n_cells);
            for count in 1..=6 {
                let mut seen = vec![0; n_cells];
                for index in 1..=count {
                    let mine = Shard { index, count }.select(&ids);
                    assert!(mine.len() <= n_cells.div_ceil(count));
                    assert!(mine.len() >= n_cells / count);
                    for i in mine {
                        seen[i] += 1;
                    }
                }
                assert!(
                    seen.iter().all(|&s| s == 1),
                    "{n_cells} cells, {count} shards"
                );
            }
        }
    }

    #[test]
    fn the_assignment_depends_only_on_the_ids() {
        let ids = ids(20);
        let mut reversed = ids.clone();
        reversed.reverse();
        let shard = Shard { index: 2, count: 3 };
        let a: Vec<&String> = shard.select(&ids).into_iter().map(|i| &ids[i]).collect();
        let mut b: Vec<&String> = shard
            .select(&reversed)
            .into_iter()
            .map(|i| &reversed[i])
            .collect();
        b.sort();
        let mut a_sorted = a.clone();
        a_sorted.sort();
        assert_eq!(a_sorted, b);
        // Pinned: a change of the assignment would split a running campaign differently.
        assert_eq!(fnv1a("a"), 0xaf63_dc4c_8601_ec8c);
    }

    #[test]
    fn shards_parse_from_the_command_line_and_schedulers() {
        let none = |_: &str| None;
        assert_eq!(
            Shard::parse("2/4", none).unwrap(),
            Shard { index: 2, count: 4 }
        );
        assert!(Shard::parse("0/4", none).is_err());
        assert!(Shard::parse("5/4", none).is_err());
        assert!(Shard::parse("1/0", none).is_err());
        assert!(Shard::parse("auto/4", none).is_err());
        let k8s = |k: &str| (k == "JOB_COMPLETION_INDEX").then(|| "3".to_string());
        assert_eq!(Shard::parse("auto/4", k8s).unwrap().index, 4);
        let slurm = |k: &str| match k {
            "SLURM_ARRAY_TASK_ID" => Some("2".to_string()),
            "SLURM_ARRAY_TASK_MIN" => Some("1".to_string()),
            _ => None,
        };
        assert_eq!(Shard::parse("auto/4", slurm).unwrap().index, 2);
    }
}
