//! The registry: every database and workload faultline knows, by name.
//!
//! [`Registry::builtin`] lists the built-in ones; a test or an embedding program can add its
//! own with [`Registry::with_database`] and [`Registry::with_workload`], and everything that
//! looks names up (the test plan, `faultline test`, the nemesis's process hooks) goes through
//! a registry, so that adding a database or a workload needs no edit anywhere else.

use crate::db::{DatabaseKind, DbError};
use crate::workload::{CasRegisterWorkload, RegisterWorkload, SetWorkload, Workload};
use std::sync::Arc;

/// Databases and workloads by name.
#[derive(Clone, Default)]
pub struct Registry {
    databases: Vec<Arc<dyn DatabaseKind>>,
    workloads: Vec<Arc<dyn Workload>>,
}

/// A name that is not in the registry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {name:?}: expected one of {known}")]
pub struct UnknownName {
    /// `database` or `workload`.
    pub what: &'static str,
    /// The name asked for.
    pub name: String,
    /// The names known, comma-separated.
    pub known: String,
}

impl Registry {
    /// The built-in databases and workloads.
    pub fn builtin() -> Registry {
        Registry::default()
            .with_database(Arc::new(crate::etcd::EtcdKind))
            .with_database(Arc::new(crate::postgres::PostgresKind))
            .with_database(Arc::new(crate::mariadb::MariadbKind))
            .with_database(Arc::new(crate::galera::GaleraKind))
            .with_workload(Arc::new(RegisterWorkload))
            .with_workload(Arc::new(CasRegisterWorkload))
            .with_workload(Arc::new(SetWorkload))
            .with_workload(Arc::new(crate::list_append::ListAppendWorkload))
            .with_workload(Arc::new(crate::rw_register::RwRegisterWorkload))
    }

    /// Adds (or replaces, by name) a database.
    pub fn with_database(mut self, db: Arc<dyn DatabaseKind>) -> Registry {
        self.databases.retain(|d| d.name() != db.name());
        self.databases.push(db);
        self
    }

    /// Adds (or replaces, by name) a workload.
    pub fn with_workload(mut self, w: Arc<dyn Workload>) -> Registry {
        self.workloads.retain(|x| x.name() != w.name());
        self.workloads.push(w);
        self
    }

    /// The database named `name`.
    pub fn database(&self, name: &str) -> Result<Arc<dyn DatabaseKind>, UnknownName> {
        self.databases
            .iter()
            .find(|d| d.name() == name)
            .cloned()
            .ok_or_else(|| UnknownName {
                what: "database",
                name: name.to_string(),
                known: self.database_names().join(", "),
            })
    }

    /// The database `--db` names: a registered name, or the path of a database definition
    /// file (`.yaml` / `.yml`, see [`crate::adapter::definition`]), loaded and checked.
    pub fn resolve_database(&self, name: &str) -> Result<Arc<dyn DatabaseKind>, DbError> {
        if crate::adapter::definition::is_definition_path(name) {
            return Ok(Arc::new(crate::adapter::FileDbKind::load(
                std::path::Path::new(name),
            )?));
        }
        self.database(name).map_err(|e| DbError::Unknown {
            name: e.name,
            known: format!("{}, or a database definition file (FILE.yaml)", e.known),
        })
    }

    /// The workload named `name`.
    pub fn workload(&self, name: &str) -> Result<Arc<dyn Workload>, UnknownName> {
        self.workloads
            .iter()
            .find(|w| w.name() == name)
            .cloned()
            .ok_or_else(|| UnknownName {
                what: "workload",
                name: name.to_string(),
                known: self.workload_names().join(", "),
            })
    }

    /// Every database's name.
    pub fn database_names(&self) -> Vec<&str> {
        self.databases.iter().map(|d| d.name()).collect()
    }

    /// Every workload's name.
    pub fn workload_names(&self) -> Vec<&'static str> {
        self.workloads.iter().map(|w| w.name()).collect()
    }

    /// Every database, in registration order.
    pub fn databases(&self) -> &[Arc<dyn DatabaseKind>] {
        &self.databases
    }

    /// Every workload, in registration order.
    pub fn workloads(&self) -> &[Arc<dyn Workload>] {
        &self.workloads
    }

    /// Opens database `name` on `cluster` with its default options (for the operator
    /// commands, which only need its process hooks).
    pub fn open_default(
        &self,
        name: &str,
        cluster: &clusters::Cluster,
    ) -> Result<Arc<dyn crate::Database>, DbError> {
        self.resolve_database(name)?
            .configure(&Default::default())?
            .open(cluster)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_looked_up_and_unknown_ones_listed() {
        let r = Registry::builtin();
        assert_eq!(
            r.database("etcd").map(|d| d.name().to_string()),
            Ok("etcd".into())
        );
        assert_eq!(
            r.workload_names(),
            [
                "register",
                "cas-register",
                "set",
                "list-append",
                "rw-register"
            ]
        );
        let e = r.workload("bank").err().unwrap();
        assert_eq!(
            e.to_string(),
            "unknown workload \"bank\": expected one of register, cas-register, set, list-append, rw-register"
        );
        // Replacing by name keeps one entry.
        let r = r.with_workload(Arc::new(SetWorkload));
        assert_eq!(r.workloads().len(), 5);
    }
}
