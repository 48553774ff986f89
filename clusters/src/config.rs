//! Cluster files (`cluster.yaml`, DESIGN.md): which nodes, and how to reach them over SSH.
//!
//! ```
//! let c = clusters::config::ClusterFile::parse("name: three\nnodes: [n1, n2, n3]\n", "c.yaml").unwrap();
//! assert_eq!(c.nodes.len(), 3);
//! assert!(c.ssh.strict_host_key_checking);
//! ```

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A cluster file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or does not match the schema.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line (1 if unknown).
        line: usize,
        /// 1-based column (1 if unknown).
        column: usize,
        /// What was wrong and what was expected.
        message: String,
    },
}

fn default_true() -> bool {
    true
}

/// SSH settings shared by every node of a cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshOptions {
    /// Remote user (default: from ~/.ssh/config, else the current user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Port (default: from ~/.ssh/config, else 22).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Private key (default: the agent, then ~/.ssh/id_*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key: Option<PathBuf>,
    /// An ssh config file to honour (default ~/.ssh/config when it exists).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// The known_hosts file (default ~/.ssh/known_hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<PathBuf>,
    /// Refuse unknown and mismatched host keys (false only when asked; logged).
    #[serde(default = "default_true")]
    pub strict_host_key_checking: bool,
    /// Run privileged commands with sudo (password from `FAULTLINE_SUDO_PASSWORD`, if any).
    #[serde(default)]
    pub sudo: bool,
    /// Time allowed to connect and authenticate.
    #[serde(default = "default_connect", with = "humantime_serde_compat")]
    pub connect_timeout: Duration,
    /// Default time allowed for one remote command.
    #[serde(default = "default_command", with = "humantime_serde_compat")]
    pub command_timeout: Duration,
}

fn default_connect() -> Duration {
    Duration::from_secs(10)
}
fn default_command() -> Duration {
    Duration::from_secs(60)
}

impl Default for SshOptions {
    fn default() -> Self {
        SshOptions {
            user: None,
            port: None,
            private_key: None,
            config: None,
            known_hosts: None,
            strict_host_key_checking: true,
            sudo: false,
            connect_timeout: default_connect(),
            command_timeout: default_command(),
        }
    }
}

/// Durations written as `10s`, `500ms`, `2m`.
mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| {
            serde::de::Error::custom(format!("{e} (expected a duration such as 10s or 500ms)"))
        })
    }
}

/// A cluster file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// The cluster's name.
    pub name: String,
    /// Host names or addresses, as ssh would take them.
    pub nodes: Vec<String>,
    /// How to reach them.
    #[serde(default)]
    pub ssh: SshOptions,
}

impl ClusterFile {
    /// Parses a cluster file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<ClusterFile, ConfigError> {
        let c: ClusterFile = serde_yaml_ng::from_str(text).map_err(|e| {
            let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m)
                .to_string();
            ConfigError::Invalid {
                file: file.to_string(),
                line,
                column,
                message,
            }
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            file: file.to_string(),
            line: 1,
            column: 1,
            message,
        };
        if c.nodes.is_empty() {
            return Err(invalid("nodes: expected at least one node".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for n in &c.nodes {
            if n.is_empty()
                || n.starts_with('-')
                || n.chars().any(|ch| ch.is_whitespace() || ch.is_control())
            {
                return Err(invalid(format!(
                    "nodes: {n:?} is not a host name or address"
                )));
            }
            if !seen.insert(n) {
                return Err(invalid(format!("nodes: {n:?} is listed twice")));
            }
        }
        Ok(c)
    }

    /// Reads and parses a cluster file.
    pub fn load(path: &Path) -> Result<ClusterFile, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: file.clone(),
            source,
        })?;
        ClusterFile::parse(&text, &file)
    }

    /// The YAML text of this cluster file.
    pub fn to_yaml(&self) -> String {
        serde_yaml_ng::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses() {
        let text = "name: five\nnodes: [n1, n2]\nssh:\n  user: root\n  port: 2222\n  private_key: /k\n  strict_host_key_checking: false\n  sudo: true\n  connect_timeout: 3s\n  command_timeout: 2m\n";
        let c = ClusterFile::parse(text, "c.yaml").unwrap();
        assert_eq!(c.ssh.port, Some(2222));
        assert_eq!(c.ssh.connect_timeout, Duration::from_secs(3));
        assert_eq!(c.ssh.command_timeout, Duration::from_secs(120));
        assert!(!c.ssh.strict_host_key_checking);
        assert_eq!(ClusterFile::parse(&c.to_yaml(), "again").unwrap(), c);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e =
            ClusterFile::parse("name: x\nnodes: [n1]\nssh:\n  usr: root\n", "c.yaml").unwrap_err();
        let s = e.to_string();
        assert!(s.starts_with("c.yaml:4:3: ssh: unknown field `usr`"), "{s}");
        let e = ClusterFile::parse(
            "name: x\nnodes: [n1]\nssh:\n  connect_timeout: soon\n",
            "c.yaml",
        )
        .unwrap_err();
        assert!(e.to_string().contains("expected a duration"), "{e}");
        let e = ClusterFile::parse("name: x\nnodes: [n1, n1]\n", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("listed twice"), "{e}");
        let e = ClusterFile::parse("name: x\nnodes: []\n", "c.yaml").unwrap_err();
        assert!(e.to_string().contains("at least one node"), "{e}");
    }
}
