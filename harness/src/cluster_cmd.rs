//! `faultline cluster up|down|status|import-vagrant`.

use crate::cli::{
    ClusterCommand, ClusterDownArgs, ClusterFileArgs, ClusterUpArgs, ImportVagrantArgs,
};
use crate::exit::{bad_input, internal, Exit, Failure};
use clusters::local::{self, LocalError};
use clusters::{Cluster, ClusterFile, RemoteCommand};
use std::time::Instant;

/// Runs a cluster subcommand.
pub fn run(cmd: ClusterCommand) -> Result<Exit, Failure> {
    match cmd {
        ClusterCommand::Up(args) => up(&args),
        ClusterCommand::Down(args) => down(&args),
        ClusterCommand::Status(args) => status(&args),
        ClusterCommand::ImportVagrant(args) => import_vagrant(args),
    }
}

/// `cluster up`: builds a local cluster and prints its cluster file's path.
fn up(args: &ClusterUpArgs) -> Result<Exit, Failure> {
    let start = Instant::now();
    let path = if args.vm {
        let opts = clusters::vm::VmOptions {
            memory_mib: args.memory,
        };
        clusters::vm::up(args.local, &args.name, &opts).map_err(local_failure)?
    } else {
        local::up(args.local, &args.name).map_err(local_failure)?
    };
    eprintln!(
        "cluster {} is up ({} nodes) in {:.1} s",
        args.name,
        args.local,
        start.elapsed().as_secs_f64()
    );
    println!("{}", path.display());
    Ok(Exit::Valid)
}

/// `cluster down`: removes what `up` made (not under a running test without `--force`) and
/// retires the cluster's fault journal.
fn down(args: &ClusterDownArgs) -> Result<Exit, Failure> {
    // Who the cluster is, asked before its files go: its fault journal goes with it.
    let file = ClusterFile::load(&local::state_dir(&args.name).join("cluster.yaml")).ok();
    // Not from under a running test (one owner per cluster).
    if let Some(h) = file.as_ref().and_then(nemesis::lease::Lease::holder) {
        if !args.force {
            return Err(bad_input(anyhow::anyhow!(
                "cluster {:?} is in use: {h}. One controller at a time: wait for it to finish, or `faultline cluster down --force` removes it under it",
                args.name
            )));
        }
        eprintln!(
            "WARNING: cluster {:?} is in use: {h}; removing it anyway (--force)",
            args.name
        );
    }
    let identity = file.map(|f| nemesis::journal::ClusterIdentity::of(&f));
    let known = local::state_dir(&args.name).exists();
    local::down(&args.name).map_err(local_failure)?;
    if known {
        eprintln!("cluster {} is down", args.name);
    } else {
        eprintln!(
            "no cluster {:?} under {} (nothing to take down)",
            args.name,
            local::state_dir(&args.name).display()
        );
        let orphans = orphan_namespaces(&args.name);
        if !orphans.is_empty() {
            eprintln!(
                "WARNING: network namespaces {} look like its nodes, left without the \
                 state directory that says which processes are its own, so they were \
                 not touched; remove them by hand (`ip netns pids NS`, then `ip netns \
                 delete NS`)",
                orphans.join(", ")
            );
        }
    }
    if let Some(id) = identity {
        match nemesis::Journal::retire(&id) {
            Ok(Some(to)) => eprintln!("its fault journal is retired to {}", to.display()),
            Ok(None) => {}
            Err(e) => eprintln!("WARNING: could not retire its fault journal: {e}"),
        }
    }
    Ok(Exit::Valid)
}

/// `cluster status`: whether each node answers over SSH.
fn status(args: &ClusterFileArgs) -> Result<Exit, Failure> {
    let file = ClusterFile::load(&args.cluster).map_err(bad_input)?;
    let cluster = Cluster::new(file, 1);
    let mut all = true;
    for r in cluster.exec_all(&RemoteCommand::new("hostname")) {
        match r.result {
            Ok(out) if out.success() => {
                println!("{}: up (hostname {})", r.node, out.stdout_text().trim())
            }
            Ok(out) => {
                all = false;
                println!(
                    "{}: answers, but `hostname` exited {}: {}",
                    r.node,
                    out.status,
                    out.stderr_text().trim()
                );
            }
            Err(e) => {
                all = false;
                println!("{}: DOWN: {e}", r.node);
            }
        }
    }
    Ok(if all { Exit::Valid } else { Exit::Invalid })
}

/// `cluster import-vagrant`: a cluster file from `vagrant ssh-config`.
fn import_vagrant(args: ImportVagrantArgs) -> Result<Exit, Failure> {
    let dir = args.dir.unwrap_or_else(|| ".".into());
    let output = match &args.from_file {
        Some(f) => std::fs::read_to_string(f)
            .map_err(|e| bad_input(anyhow::anyhow!("{}: {e}", f.display())))?,
        None => {
            let out = std::process::Command::new("vagrant")
                .arg("ssh-config")
                .current_dir(&dir)
                .output()
                .map_err(|e| {
                    bad_input(anyhow::anyhow!(
                        "cannot run `vagrant ssh-config` in {}: {e}",
                        dir.display()
                    ))
                })?;
            if !out.status.success() {
                return Err(bad_input(anyhow::anyhow!(
                    "`vagrant ssh-config` failed in {}: {}",
                    dir.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let config_path =
        std::path::absolute(dir.join(format!("{}.ssh_config", args.name))).map_err(internal)?;
    let (file, config) =
        clusters::vagrant::import(&output, &args.name, config_path.clone()).map_err(bad_input)?;
    std::fs::write(&config_path, config)
        .map_err(|e| internal(anyhow::anyhow!("{}: {e}", config_path.display())))?;
    eprintln!("wrote {}", config_path.display());
    print!("{}", file.to_yaml());
    Ok(Exit::Valid)
}

fn local_failure(e: LocalError) -> Failure {
    match e {
        LocalError::NotRoot
        | LocalError::Missing { .. }
        | LocalError::BadName(_)
        | LocalError::HiddenHome(_)
        | LocalError::Leftover { .. } => bad_input(e),
        other => internal(other),
    }
}

/// Network namespaces named as local cluster `name`'s nodes are (`fl-NAME-nI`).
fn orphan_namespaces(name: &str) -> Vec<String> {
    let prefix = format!("fl-{name}-");
    std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| n.starts_with(&prefix))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
