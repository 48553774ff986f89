//! The isolation level a SQL database runs every transaction at (`isolation`, `--isolation`),
//! shared by the SQL databases; each says how it starts a transaction at a level and what
//! the level promises there (`postgres`, `mysql_client`).

/// The isolation level of every transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// `READ COMMITTED`.
    ReadCommitted,
    /// `REPEATABLE READ`: snapshot isolation in PostgreSQL; in MariaDB, reads from a snapshot
    /// while writes and locking reads see the latest committed rows unless
    /// `innodb_snapshot_isolation` is on.
    RepeatableRead,
    /// `SERIALIZABLE`: SSI in PostgreSQL, two-phase locking in MariaDB.
    Serializable,
}

impl Isolation {
    /// The option's values.
    pub const NAMES: [&'static str; 3] = ["read-committed", "repeatable-read", "serializable"];

    /// Parses an option value.
    pub fn parse(s: &str) -> Option<Isolation> {
        match s {
            "read-committed" => Some(Isolation::ReadCommitted),
            "repeatable-read" => Some(Isolation::RepeatableRead),
            "serializable" => Some(Isolation::Serializable),
            _ => None,
        }
    }

    /// The option value.
    pub fn name(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read-committed",
            Isolation::RepeatableRead => "repeatable-read",
            Isolation::Serializable => "serializable",
        }
    }
}
