//! Turns `vagrant ssh-config` output into a cluster file.

use crate::config::{ClusterFile, SshOptions};
use std::path::PathBuf;

/// Why the output could not be used.
#[derive(Debug, thiserror::Error)]
#[error("vagrant ssh-config line {line}: {message}")]
pub struct VagrantError {
    /// 1-based line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

/// Builds a cluster file from `vagrant ssh-config` output: one node per `Host` block, named
/// as Vagrant names the machine. Vagrant's per-machine HostName, Port and IdentityFile become
/// an ssh config file (`ssh_config_path`, which the caller writes with the returned text) so
/// that the cluster file stays in DESIGN.md's shape.
pub fn import(
    output: &str,
    name: &str,
    ssh_config_path: PathBuf,
) -> Result<(ClusterFile, String), VagrantError> {
    let mut nodes = Vec::new();
    let mut user: Option<String> = None;
    let mut config = String::from(
        "# Written by `faultline cluster import-vagrant` from `vagrant ssh-config`.\n",
    );
    let mut strict = true;
    for (i, raw) in output.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(char::is_whitespace)
            .map(|(k, v)| (k, v.trim()))
            .ok_or(VagrantError {
                line: i + 1,
                message: format!("expected `Keyword value`, found {line:?}"),
            })?;
        match key {
            "Host" => {
                nodes.push(value.to_string());
                config.push_str(&format!("Host {value}\n"));
            }
            _ if nodes.is_empty() => {
                return Err(VagrantError {
                    line: i + 1,
                    message: format!("{key} before any Host line"),
                })
            }
            "User" => {
                user.get_or_insert_with(|| value.to_string());
                config.push_str(&format!("  User {value}\n"));
            }
            "HostName"
            | "Port"
            | "IdentityFile"
            | "IdentitiesOnly"
            | "LogLevel"
            | "PasswordAuthentication"
            | "UserKnownHostsFile" => config.push_str(&format!("  {key} {value}\n")),
            "StrictHostKeyChecking" => {
                strict &= value != "no";
            }
            _ => config.push_str(&format!("  # {key} {value}\n")),
        }
    }
    if nodes.is_empty() {
        return Err(VagrantError {
            line: 1,
            message: "no Host block: is a Vagrant machine running (`vagrant status`)?".into(),
        });
    }
    let file = ClusterFile {
        name: name.to_string(),
        nodes,
        ssh: SshOptions {
            user,
            config: Some(ssh_config_path),
            // Vagrant's own config disables host key checking; faultline only does so when
            // told, and says so in the file.
            strict_host_key_checking: strict,
            ..SshOptions::default()
        },
    };
    Ok((file, config))
}
