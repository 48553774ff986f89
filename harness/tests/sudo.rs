//! The sudo path, exercised for real: nodes reached as a user who is not root and needs sudo
//! with a password (`ssh.sudo: true`, the password from `FAULTLINE_SUDO_PASSWORD`). A whole
//! `faultline test` with partition, kill and pause faults runs through it (database hooks,
//! fault apply and heal, the lease on the nodes); without the password, a fault is refused
//! with sudo's own complaint and nothing is left applied.
//!
//! Local nodes share this machine's /etc (users, sudoers) and /home: the test adds a user and
//! a sudoers rule for the run and removes both, whatever happens.

use clusters::testing::{home, require_root};
use std::path::Path;
use std::process::{Command, Output};
mod common;
use common::{cmd, has_f, history, nemesis_events, run_echoed, text};

const USER: &str = "flsudotest";
const PASSWORD: &str = "correct horse battery staple";

fn sh(script: &str) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh")
}

/// `faultline ARGS`, with the nodes' sudo password or without one.
fn faultline(home: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut c = cmd(home, args);
    match password {
        Some(p) => c.env(clusters::ssh::SUDO_PASSWORD_ENV, p),
        None => c.env_remove(clusters::ssh::SUDO_PASSWORD_ENV),
    };
    run_echoed(c, args)
}

/// Removes the user, its sudoers rule and the cluster when dropped.
struct Cleanup<'a> {
    home: &'a Path,
    cluster: &'a str,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = faultline(
            self.home,
            &["cluster", "down", "--name", self.cluster, "--force"],
            None,
        );
        sh(&format!(
            "rm -f /etc/sudoers.d/{USER}; userdel -r {USER} 2>/dev/null; true"
        ));
    }
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: a local cluster and a user with a sudoers rule"
)]
fn faults_and_database_hooks_run_through_sudo_with_a_password() {
    require_root();
    assert!(
        Path::new("/usr/bin/sudo").exists(),
        "sudo is not installed (scripts/install-deps installs it)"
    );
    let home = home();
    let name = format!("t-sudo-{}", std::process::id());
    let _cleanup = Cleanup {
        home: home.path(),
        cluster: &name,
    };
    // A user whose commands need sudo, and sudo that needs its password.
    let made = sh(&format!(
        "id {USER} >/dev/null 2>&1 || useradd --create-home --shell /bin/sh {USER}; \
         echo '{USER}:{PASSWORD}' | chpasswd && \
         printf '%s\\n' 'Defaults:{USER} passwd_tries=1' '{USER} ALL=(ALL:ALL) ALL' > /etc/sudoers.d/{USER} && \
         chmod 440 /etc/sudoers.d/{USER} && visudo -cq"
    ));
    assert!(made.status.success(), "{}", text(&made.stderr));

    let up = faultline(
        home.path(),
        &["cluster", "up", "--local", "3", "--name", &name],
        None,
    );
    assert!(up.status.success());
    let root_file = text(&up.stdout).trim().to_string();
    let yaml = std::fs::read_to_string(&root_file).expect("cluster file");
    let sudo_yaml = yaml
        .replace("user: root", &format!("user: {USER}"))
        .replace("sudo: false", "sudo: true");
    assert_ne!(yaml, sudo_yaml);
    let sudo_file = home.path().join("sudo-cluster.yaml");
    std::fs::write(&sudo_file, &sudo_yaml).unwrap();
    let sudo_file = sudo_file.to_str().unwrap();

    // The SSH user is not root: commands that need root go through sudo.
    let who = faultline(
        home.path(),
        &[
            "exec",
            "--cluster",
            sudo_file,
            "--node",
            "n1",
            "--",
            "id",
            "-un",
        ],
        None,
    );
    assert!(text(&who.stdout).contains(USER), "{}", text(&who.stdout));

    // Without the password, a fault is refused with sudo's complaint, and nothing stays.
    let refused = faultline(
        home.path(),
        &[
            "nemesis",
            "--cluster",
            sudo_file,
            "partition",
            "--isolate",
            "n2",
        ],
        None,
    );
    assert_ne!(refused.status.code(), Some(0));
    let err = text(&refused.stderr);
    assert!(err.contains("password"), "{err}");
    let rules = faultline(
        home.path(),
        &[
            "exec",
            "--cluster",
            &root_file,
            "--",
            "iptables",
            "-S",
            "INPUT",
        ],
        None,
    );
    assert!(
        !text(&rules.stdout).contains("FAULTLINE"),
        "{}",
        text(&rules.stdout)
    );

    // With it, a whole test: etcd set up, partitions, kills and pauses applied and healed.
    let store = home.path().join("store");
    let run = faultline(
        home.path(),
        &[
            "test",
            "--cluster",
            sudo_file,
            "--workload",
            "register",
            "--nemesis",
            "partition,kill,pause",
            "--nemesis-interval",
            "1s",
            "--time-limit",
            "10s",
            "--seed",
            "4",
            "--store",
            store.to_str().unwrap(),
        ],
        Some(PASSWORD),
    );
    assert_eq!(run.status.code(), Some(0), "{}", text(&run.stdout));
    let latest = common::latest_in(&store);
    let history = history(&latest);
    let started = |f: &str| has_f(&history, &format!("start-{f}"));
    assert!(
        started("partition") || started("kill") || started("pause"),
        "no fault was applied through sudo"
    );
    // A fault may be refused for the database's reasons (no primary to isolate during an
    // election), never for sudo's.
    for e in nemesis_events(&history)
        .into_iter()
        .filter(|e| e.f == "fault-refused")
    {
        let said = format!("{:?} {:?}", e.error, e.value);
        assert!(
            !said.contains("sudo") && !said.contains("password"),
            "a fault was refused through sudo: {e:?}"
        );
    }
    // Every fault is healed: no rule of faultline's on any node, etcd running on every node.
    let after = faultline(
        home.path(),
        &[
            "exec",
            "--cluster",
            &root_file,
            "--",
            "iptables",
            "-S",
            "INPUT",
        ],
        None,
    );
    assert!(
        !text(&after.stdout).contains("FAULTLINE"),
        "{}",
        text(&after.stdout)
    );
    assert!(
        std::fs::read_dir(latest.join("nodes"))
            .map(|d| d.count())
            .unwrap_or(0)
            == 3,
        "logs collected from every node"
    );
}
