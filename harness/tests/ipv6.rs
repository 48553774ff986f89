//! Partitions cut IPv6 too where nodes have IPv6 addresses: on a local cluster whose nodes
//! are given ULA addresses, a partition makes a TCP connect over IPv6 time out (its SYN is
//! dropped) where it is refused at once (RST: the peer is reachable) before and after. Needs
//! root: built without it, it is listed as ignored (CI runs it as root).

use clusters::testing::{home, require_root};
use std::path::Path;
mod common;
use common::{faultline, text, Cluster};

/// How a TCP connect from `from` to n1's IPv6 address ends: "refused" (reachable) or
/// "timeout" (dropped).
fn connect_v6(home: &Path, cluster: &str, from: &str) -> String {
    let out = faultline(
        home,
        &[
            "exec",
            "--cluster",
            cluster,
            "--node",
            from,
            "--",
            "sh",
            "-c",
            "timeout 3 bash -c 'echo > /dev/tcp/fd00:fa17::1/9' 2>/dev/null; echo \"rc=$?\"",
        ],
    );
    let s = text(&out.stdout);
    if s.contains("rc=124") {
        "timeout".into()
    } else if s.contains("rc=1") {
        "refused".into()
    } else {
        s
    }
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd, ip6tables)"
)]
fn a_partition_drops_ipv6_between_nodes_with_ipv6_addresses() {
    require_root();
    let home = home();
    let h = home.path();
    let name = format!("t-v6-{}", std::process::id());
    let cluster = Cluster::up(h, &name, 3);
    let c = cluster.file.clone();
    let c = c.to_str().expect("utf-8 path");
    // Each node n<i> gets fd00:fa17::<i> on the interface of its IPv4 address.
    let out = faultline(
        h,
        &[
            "exec",
            "--cluster",
            c,
            "--",
            "sh",
            "-c",
            "dev=$(ip -o -4 addr show scope global | awk '{print $2; exit}'); \
             ip -6 addr add fd00:fa17::$(hostname | tr -dc 0-9)/64 dev \"$dev\" nodad",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        connect_v6(h, c, "n2"),
        "refused",
        "n1 is reachable over IPv6"
    );

    let out = faultline(
        h,
        &["nemesis", "--cluster", c, "partition", "--isolate", "n1"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        connect_v6(h, c, "n2"),
        "timeout",
        "IPv6 crosses the partition"
    );
    assert_eq!(
        connect_v6(h, c, "n3"),
        "timeout",
        "IPv6 crosses the partition"
    );

    let out = faultline(h, &["heal", "--cluster", c]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(connect_v6(h, c, "n2"), "refused", "heal restores IPv6");
    let rules = faultline(
        h,
        &[
            "exec",
            "--cluster",
            c,
            "--",
            "sh",
            "-c",
            "ip6tables -S | grep -c FAULTLINE || true",
        ],
    );
    assert_eq!(
        text(&rules.stdout)
            .lines()
            .filter(|l| l.trim() == "0")
            .count(),
        3,
        "heal leaves no ip6tables rule: {}",
        text(&rules.stdout)
    );
}
