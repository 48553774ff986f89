//! Node addresses as the nodes themselves report them (`ip -o -4 addr show scope global`,
//! and `-6` for IPv6): the addresses their peers see their packets come from, and the one a
//! database should advertise.

use crate::shell::RemoteCommand;
use crate::ssh::Cluster;
use crate::SshError;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Each node's global IPv4 addresses, asked in parallel. Errors name the node.
pub fn node_addresses(cluster: &Cluster) -> Result<BTreeMap<String, Vec<Ipv4Addr>>, SshError> {
    let cmd = RemoteCommand::new("ip").args(["-o", "-4", "addr", "show", "scope", "global"]);
    let mut out = BTreeMap::new();
    for r in cluster.on_nodes(&cluster.nodes(), |n| cluster.exec(n, &cmd)) {
        let o = r.result?;
        if !o.success() {
            return Err(SshError::Session {
                node: r.node,
                message: format!("`ip addr` exited {}: {}", o.status, o.stderr_text().trim()),
            });
        }
        out.insert(r.node, parse_addresses(&o.stdout_text()));
    }
    Ok(out)
}

/// Each node's global IPv6 addresses (none where a node has none), asked in parallel.
/// Errors name the node.
pub fn node_addresses_v6(cluster: &Cluster) -> Result<BTreeMap<String, Vec<Ipv6Addr>>, SshError> {
    let cmd = RemoteCommand::new("ip").args(["-o", "-6", "addr", "show", "scope", "global"]);
    let mut out = BTreeMap::new();
    for r in cluster.on_nodes(&cluster.nodes(), |n| cluster.exec(n, &cmd)) {
        let o = r.result?;
        // A node without IPv6 at all answers with an error: it has no IPv6 address.
        let addrs = if o.success() {
            parse_addresses_v6(&o.stdout_text())
        } else {
            Vec::new()
        };
        out.insert(r.node, addrs);
    }
    Ok(out)
}

/// The IPv6 addresses in `ip -o -6 addr` output.
pub fn parse_addresses_v6(text: &str) -> Vec<Ipv6Addr> {
    parse_after(text, "inet6")
}

/// The IPv4 addresses in `ip -o -4 addr` output.
pub fn parse_addresses(text: &str) -> Vec<Ipv4Addr> {
    parse_after(text, "inet")
}

fn parse_after<A: std::str::FromStr>(text: &str, family: &str) -> Vec<A> {
    let mut v = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == family {
                if let Some(a) = words
                    .next()
                    .and_then(|cidr| cidr.split('/').next())
                    .and_then(|a| a.parse().ok())
                {
                    v.push(a);
                }
            }
        }
    }
    v
}

/// For each node, the address to advertise to its peers: its first address that no other
/// node also has (Vagrant gives every guest the same NAT address, which reaches no peer).
pub fn peer_addresses(
    all: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> Result<BTreeMap<String, Ipv4Addr>, String> {
    let mut out = BTreeMap::new();
    for (node, addrs) in all {
        let unique = addrs.iter().find(|a| {
            all.iter()
                .filter(|(m, _)| *m != node)
                .all(|(_, other)| !other.contains(a))
        });
        match unique {
            Some(a) => {
                out.insert(node.clone(), *a);
            }
            None => {
                return Err(format!(
                    "{node} has no address of its own to advertise to its peers (it has: {:?})",
                    addrs
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_from_ip_output() {
        let text = "2: eth0    inet 10.250.5.1/24 brd 10.250.5.255 scope global eth0\\       valid_lft forever preferred_lft forever\n\
                    3: eth1    inet 192.168.56.11/24 scope global eth1\\ valid_lft forever\n";
        assert_eq!(
            parse_addresses(text),
            vec![
                Ipv4Addr::new(10, 250, 5, 1),
                Ipv4Addr::new(192, 168, 56, 11)
            ]
        );
    }

    #[test]
    fn ipv6_addresses_parse_from_ip_output() {
        let text = "2: eth0    inet6 fd00:fa17::1/64 scope global \\       valid_lft forever preferred_lft forever\n";
        assert_eq!(
            parse_addresses_v6(text),
            vec!["fd00:fa17::1".parse::<Ipv6Addr>().unwrap()]
        );
        assert!(parse_addresses(text).is_empty());
    }

    #[test]
    fn a_shared_nat_address_is_never_advertised() {
        let nat = Ipv4Addr::new(10, 0, 2, 15);
        let all: BTreeMap<String, Vec<Ipv4Addr>> = [
            ("n1".to_string(), vec![nat, Ipv4Addr::new(192, 168, 56, 11)]),
            ("n2".to_string(), vec![nat, Ipv4Addr::new(192, 168, 56, 12)]),
        ]
        .into();
        let p = peer_addresses(&all).unwrap();
        assert_eq!(p["n1"], Ipv4Addr::new(192, 168, 56, 11));
        let only_nat: BTreeMap<String, Vec<Ipv4Addr>> =
            [("n1".to_string(), vec![nat]), ("n2".to_string(), vec![nat])].into();
        assert!(peer_addresses(&only_nat).is_err());
    }
}
