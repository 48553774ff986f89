//! `ProxyJump` in the ssh config is followed: on a local cluster where n2 refuses new SSH
//! connections from the controller and accepts them from n1, a cluster file whose ssh config
//! says `ProxyJump n1` for n2 reaches n2 through n1. Needs root: built without it, it is
//! listed as ignored (CI runs it as root).

use clusters::testing::{home, require_root};
use clusters::ClusterFile;
use std::time::Duration;
mod common;
use common::{faultline, text, Cluster};

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, iptables)"
)]
fn a_node_behind_a_jump_host_is_reached_through_it() {
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-jump-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();

    // The same cluster, through an ssh config that reaches n2 by way of n1.
    let mut file = ClusterFile::load(&c).expect("cluster file");
    let config = file.ssh.config.clone().expect("the cluster's ssh config");
    let text_config = std::fs::read_to_string(&config).expect("ssh config");
    let jumped = text_config.replace("Host n2\n", "Host n2\n  ProxyJump n1\n");
    assert_ne!(jumped, text_config);
    let jump_config = h.join("ssh_config.jump");
    std::fs::write(&jump_config, jumped).expect("write");
    file.name = format!("{name}-jump");
    file.ssh.config = Some(jump_config);
    file.ssh.connect_timeout = Duration::from_secs(3);
    let jc = h.join("jump.yaml");
    std::fs::write(&jc, file.to_yaml()).expect("write");
    let jc = jc.to_str().expect("utf-8 path");
    let c = c.to_str().expect("utf-8 path");

    // n2 refuses new SSH connections from the controller (the address its current one
    // comes from), and still takes them from n1.
    let out = faultline(
        h,
        &[
            "exec",
            "--cluster",
            c,
            "--node",
            "n2",
            "--",
            "sh",
            "-c",
            "iptables -I INPUT -s \"${SSH_CLIENT%% *}\" -p tcp --dport 22 -m conntrack --ctstate NEW -j DROP",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let direct = faultline(
        h,
        &["exec", "--cluster", c, "--node", "n2", "--", "hostname"],
    );
    assert_ne!(
        direct.status.code(),
        Some(0),
        "n2 must refuse the controller"
    );

    let out = faultline(h, &["exec", "--cluster", jc, "--", "hostname"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("== n2") && stdout.contains("\nn2\n"),
        "{stdout}"
    );
}
