//! PostgreSQL's options, typed: parsed once from the user's, recorded whole in test.yaml, and
//! what a deployment promises.

use super::{Install, Isolation};
use crate::db::{only_options, Database, DbConfig, DbError, DbOptions};
use checkers::txn::Consistency;
use clusters::Cluster;
use std::sync::Arc;

/// Where read-only transactions go (`reads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reads {
    /// Every transaction runs on the primary.
    Primary,
    /// A worker bound to a replica runs its read-only transactions on that replica.
    Replicas,
}

impl Reads {
    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Reads::Primary => "primary",
            Reads::Replicas => "replicas",
        }
    }
}

/// When a commit is acknowledged (`synchronous_commit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SynchronousCommit {
    /// After its WAL is flushed to disk (and, with synchronous standbys, theirs).
    On,
    /// Before its WAL is flushed: a crash may lose the last commits acknowledged.
    Off,
    /// After the local flush, whatever synchronous standbys do.
    Local,
    /// After synchronous standbys wrote it (not flushed).
    RemoteWrite,
    /// After synchronous standbys applied it.
    RemoteApply,
}

impl SynchronousCommit {
    /// Every value, in the order `--help` lists them.
    pub const ALL: [SynchronousCommit; 5] = [
        SynchronousCommit::On,
        SynchronousCommit::Off,
        SynchronousCommit::Local,
        SynchronousCommit::RemoteWrite,
        SynchronousCommit::RemoteApply,
    ];

    /// The option value, as PostgreSQL spells it.
    pub fn name(self) -> &'static str {
        match self {
            SynchronousCommit::On => "on",
            SynchronousCommit::Off => "off",
            SynchronousCommit::Local => "local",
            SynchronousCommit::RemoteWrite => "remote_write",
            SynchronousCommit::RemoteApply => "remote_apply",
        }
    }
}

/// PostgreSQL's options, typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// How to install.
    pub install: Install,
    /// The level of every transaction.
    pub isolation: Isolation,
    /// How many streaming replicas follow the primary (on the nodes after it).
    pub replicas: usize,
    /// Where read-only transactions go.
    pub reads: Reads,
    /// The model the run is checked against.
    pub consistency: Consistency,
    /// `fsync`: whether the server forces its writes to disk (off: a power loss can lose
    /// or corrupt what it acknowledged).
    pub fsync: bool,
    /// `synchronous_commit`: when a commit is acknowledged.
    pub synchronous_commit: SynchronousCommit,
}

impl PostgresOptions {
    /// The option names.
    pub const NAMES: [&'static str; 7] = [
        "install",
        "isolation",
        "replicas",
        "reads",
        "consistency",
        "fsync",
        "synchronous-commit",
    ];
    /// The ways of installing PostgreSQL (`install`).
    pub const INSTALLS: [Install; 3] = [Install::Auto, Install::Package, Install::Never];

    /// Parses (and validates) options by name; absent ones take their defaults (isolation
    /// serializable, no replicas, reads on the primary, consistency what that promises).
    pub fn parse(given: &DbOptions) -> Result<PostgresOptions, DbError> {
        only_options("postgres", given, &Self::NAMES)?;
        let install = Install::parse("postgres", given.get("install"), &Self::INSTALLS)?;
        let isolation = match given.get("isolation") {
            None => Isolation::Serializable,
            Some(s) => Isolation::parse(s).ok_or_else(|| {
                DbError::Config(format!(
                    "postgres isolation {s:?}: expected {}",
                    Isolation::NAMES.join(", ")
                ))
            })?,
        };
        let replicas = match given.get("replicas") {
            None => 0,
            Some(s) => s.parse::<usize>().map_err(|_| {
                DbError::Config(format!(
                    "postgres replicas {s:?}: expected a number of replicas (0 or more)"
                ))
            })?,
        };
        let reads = match given.get("reads").map(String::as_str) {
            None | Some("primary") => Reads::Primary,
            Some("replicas") if replicas > 0 => Reads::Replicas,
            Some("replicas") => {
                return Err(DbError::Config(
                    "postgres reads=replicas needs replicas=N with N of 1 or more".into(),
                ))
            }
            Some(other) => {
                return Err(DbError::Config(format!(
                    "postgres reads {other:?}: expected primary or replicas"
                )))
            }
        };
        let consistency = match given.get("consistency") {
            None => Self::promises(isolation, reads),
            Some(s) => s
                .parse::<Consistency>()
                .map_err(|e| DbError::Config(format!("postgres consistency: {e}")))?,
        };
        let fsync = match given.get("fsync") {
            None => true,
            some => crate::db::parse_on_off("postgres", "fsync", some)?,
        };
        let synchronous_commit = match given.get("synchronous-commit") {
            None => SynchronousCommit::On,
            Some(s) => SynchronousCommit::ALL
                .into_iter()
                .find(|c| c.name() == s)
                .ok_or_else(|| {
                    DbError::Config(format!(
                        "postgres synchronous-commit {s:?}: expected on, off, local, remote_write or remote_apply"
                    ))
                })?,
        };
        Ok(PostgresOptions {
            install,
            isolation,
            replicas,
            reads,
            consistency,
            fsync,
            synchronous_commit,
        })
    }

    /// What a deployment promises. On the primary alone, what the level promises: read
    /// committed; snapshot isolation for repeatable read (its documentation: "the Repeatable
    /// Read isolation level is implemented using a technique known ... as Snapshot
    /// Isolation"); strict serializability for serializable (SSI on one server, where a
    /// transaction's snapshot is taken after every transaction that committed before it
    /// began). With reads from asynchronous replicas, a read-only
    /// transaction sees a snapshot of the primary's past (a prefix of its commits) at
    /// repeatable read: at most snapshot isolation, whatever the level of the writers (a
    /// standby has no serializable mode; PostgreSQL's documentation warns that its snapshots
    /// may show states no serial order explains), and read committed stays read committed.
    pub fn promises(isolation: Isolation, reads: Reads) -> Consistency {
        match (reads, isolation) {
            (Reads::Primary, Isolation::ReadCommitted) => Consistency::ReadCommitted,
            (Reads::Primary, Isolation::RepeatableRead) => Consistency::SnapshotIsolation,
            (Reads::Primary, Isolation::Serializable) => Consistency::StrictSerializable,
            (Reads::Replicas, Isolation::ReadCommitted) => Consistency::ReadCommitted,
            (Reads::Replicas, _) => Consistency::SnapshotIsolation,
        }
    }
}

impl DbConfig for PostgresOptions {
    fn options(&self) -> DbOptions {
        let mut m = DbOptions::new();
        m.insert("install".into(), self.install.name().into());
        m.insert("isolation".into(), self.isolation.name().into());
        m.insert("replicas".into(), self.replicas.to_string());
        m.insert("reads".into(), self.reads.name().into());
        m.insert("consistency".into(), self.consistency.name().into());
        m.insert("fsync".into(), crate::db::on_off(self.fsync).into());
        m.insert(
            "synchronous-commit".into(),
            self.synchronous_commit.name().into(),
        );
        m
    }
    fn consistency(&self) -> Option<Consistency> {
        Some(self.consistency)
    }
    fn open(&self, cluster: &Cluster) -> Result<Arc<dyn Database>, DbError> {
        Ok(Arc::new(super::Postgres::new(cluster, self.clone())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DatabaseKind;
    use crate::postgres::PostgresKind;

    #[test]
    fn options_are_validated_and_consistency_follows_the_isolation_level() {
        let r = |pairs: &[(&str, &str)]| {
            let given: DbOptions = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            PostgresKind.configure(&given).map(|c| c.options())
        };
        let d = r(&[]).unwrap();
        // Durable by default; the durability settings are options (issue 25).
        assert_eq!(d["fsync"], "on");
        assert_eq!(d["synchronous-commit"], "on");
        let lax = r(&[("fsync", "off"), ("synchronous-commit", "off")]).unwrap();
        assert_eq!(
            (lax["fsync"].as_str(), lax["synchronous-commit"].as_str()),
            ("off", "off")
        );
        assert_eq!(
            r(&[("synchronous-commit", "remote_apply")]).unwrap()["synchronous-commit"],
            "remote_apply"
        );
        let e = r(&[("synchronous-commit", "sometimes")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("expected on, off, local, remote_write or remote_apply"),
            "{e}"
        );
        assert!(r(&[("fsync", "yes")]).is_err());
        assert_eq!(d["install"], "auto");
        assert_eq!(d["isolation"], "serializable");
        assert_eq!(d["consistency"], "strict-serializable");
        assert_eq!(
            r(&[("isolation", "repeatable-read")]).unwrap()["consistency"],
            "snapshot-isolation"
        );
        assert_eq!(
            r(&[("isolation", "read-committed")]).unwrap()["consistency"],
            "read-committed"
        );
        let over = r(&[
            ("isolation", "repeatable-read"),
            ("consistency", "serializable"),
        ])
        .unwrap();
        assert_eq!(over["consistency"], "serializable");
        assert_eq!(
            PostgresKind.configure(&over).unwrap().consistency(),
            Some(Consistency::Serializable)
        );
        // Resolving is idempotent: what test.yaml records resolves to itself.
        assert_eq!(
            PostgresKind.configure(&over).map(|c| c.options()).unwrap(),
            over
        );
        // Reads from asynchronous replicas promise at most snapshot isolation.
        assert_eq!(d["replicas"], "0");
        assert_eq!(d["reads"], "primary");
        let rep = r(&[("replicas", "2"), ("reads", "replicas")]).unwrap();
        assert_eq!(rep["consistency"], "snapshot-isolation");
        assert_eq!(
            PostgresKind.configure(&rep).map(|c| c.options()).unwrap(),
            rep
        );
        assert_eq!(
            r(&[
                ("replicas", "1"),
                ("isolation", "read-committed"),
                ("reads", "replicas")
            ])
            .unwrap()["consistency"],
            "read-committed"
        );
        // Replicas that only follow (reads on the primary) change no promise.
        assert_eq!(
            r(&[("replicas", "2")]).unwrap()["consistency"],
            "strict-serializable"
        );
        for (pairs, want) in [
            (&[("isolation", "snapshot")][..], "expected read-committed"),
            (
                &[("consistency", "linearizable")][..],
                "unknown consistency",
            ),
            (
                &[("install", "upload")][..],
                "expected auto, package or never",
            ),
            (
                &[("read-mode", "serializable")][..],
                "no option \"read-mode\"",
            ),
            (&[("replicas", "-1")][..], "expected a number of replicas"),
            (&[("reads", "replicas")][..], "needs replicas=N"),
            (
                &[("replicas", "1"), ("reads", "standby")][..],
                "expected primary or replicas",
            ),
        ] {
            let e = r(pairs).unwrap_err().to_string();
            assert!(e.contains(want), "{pairs:?}: {e}");
        }
    }
}
