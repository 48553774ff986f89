//! Packet faults with `tc netem` on the interfaces a node uses to reach its peers: on all
//! outgoing traffic, or (with a `prio` qdisc and `u32` filters) only on packets to chosen
//! nodes. faultline's qdiscs carry the handle `fa17:`; heal deletes a root qdisc only when
//! it is faultline's, and applying refuses to replace a root qdisc that someone else
//! configured.

use crate::fault::NetemSpec;
use crate::remote::{on_each, on_each_retrying, root_script};
use crate::NemesisError;
use clusters::{quote, Cluster};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The handle of faultline's root qdiscs.
pub const HANDLE: &str = "fa17:";

/// Finds, on each of `nodes`, the interfaces that carry its packets to `dests` (`ip route
/// get`), and checks that their root qdisc is the kernel's default or faultline's own.
pub fn plan(
    cluster: &Cluster,
    nodes: &[String],
    dests: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> Result<BTreeMap<String, Vec<String>>, NemesisError> {
    let results = cluster.on_nodes(nodes, |n| {
        let addrs: Vec<String> = dests
            .get(n)
            .into_iter()
            .flatten()
            .map(|a| quote(&a.to_string()))
            .collect();
        if addrs.is_empty() {
            return Ok(Err(NemesisError::BadFault(format!(
                "{n}: no peer address to route packet faults towards"
            ))));
        }
        let script = format!(
            "command -v tc >/dev/null || {{ echo 'tc (iproute2) is not installed on this node' >&2; exit 127; }}\n\
             for a in {}; do ip -o route get \"$a\"; done",
            addrs.join(" ")
        );
        let out = match root_script(cluster, n, "ip route get", &script) {
            Ok(o) => o,
            Err(e) => return Ok(Err(e)),
        };
        let mut ifaces: Vec<String> = parse_route_devs(&out.stdout_text());
        ifaces.sort();
        ifaces.dedup();
        for i in &ifaces {
            let out = match root_script(
                cluster,
                n,
                "tc qdisc show",
                &format!("tc qdisc show dev {} root", quote(i)),
            ) {
                Ok(o) => o,
                Err(e) => return Ok(Err(e)),
            };
            let text = out.stdout_text();
            if let Some(h) = root_handle(&text) {
                if h != "0:" && h != HANDLE {
                    return Ok(Err(NemesisError::Refused(format!(
                        "{n}: interface {i} has a root qdisc configured by someone else ({}); faultline will not replace it",
                        text.trim()
                    ))));
                }
            }
        }
        Ok(Ok(ifaces))
    });
    let mut out = BTreeMap::new();
    let mut errors = Vec::new();
    for r in results {
        match r.result {
            Ok(Ok(i)) => {
                out.insert(r.node, i);
            }
            Ok(Err(e)) => errors.push((r.node, e.to_string())),
            Err(e) => errors.push((r.node, e.to_string())),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(NemesisError::Nodes(errors))
    }
}

/// The `dev` of each line of `ip -o route get` output.
pub fn parse_route_devs(text: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in text.lines() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "dev" {
                if let Some(d) = words.next() {
                    v.push(d.to_string());
                }
            }
        }
    }
    v
}

/// The handle of the root qdisc in `tc qdisc show dev X root` output (`0:` is the
/// kernel's default).
pub fn root_handle(text: &str) -> Option<&str> {
    let line = text.lines().find(|l| l.contains(" root"))?;
    line.split_whitespace().nth(2)
}

/// The script that installs `spec` on `iface` (only for packets to `to`, when not empty).
fn apply_script(iface: &str, spec: &NetemSpec, to: &[Ipv4Addr]) -> String {
    let dev = quote(iface);
    let args: Vec<String> = spec.tc_args().iter().map(|a| quote(a)).collect();
    let args = args.join(" ");
    let mut s = format!(
        "set -e\nif [ \"$(tc qdisc show dev {dev} root | awk '{{print $3}}')\" = {HANDLE} ]; then tc qdisc del dev {dev} root; fi\n"
    );
    if to.is_empty() {
        s.push_str(&format!(
            "tc qdisc add dev {dev} root handle {HANDLE} netem {args}\n"
        ));
    } else {
        s.push_str(&format!(
            "tc qdisc add dev {dev} root handle {HANDLE} prio bands 4\n\
             tc qdisc add dev {dev} parent {HANDLE}4 handle fa18: netem {args}\n"
        ));
        for a in to {
            s.push_str(&format!(
                "tc filter add dev {dev} parent {HANDLE} protocol ip prio 1 u32 match ip dst {}/32 flowid {HANDLE}4\n",
                quote(&a.to_string())
            ));
        }
    }
    s
}

/// The script that removes faultline's root qdisc from `iface`, if it is there.
fn heal_script(iface: &str) -> String {
    let dev = quote(iface);
    format!(
        "command -v tc >/dev/null || exit 0\n\
         cur=$(tc qdisc show dev {dev} root 2>/dev/null | awk '{{print $3}}') || exit 0\n\
         if [ \"$cur\" = {HANDLE} ]; then tc qdisc del dev {dev} root; fi\n"
    )
}

/// Applies `spec` on the planned interfaces of each node, in parallel.
pub fn apply(
    cluster: &Cluster,
    ifaces: &BTreeMap<String, Vec<String>>,
    spec: &NetemSpec,
    to: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> BTreeMap<String, String> {
    let nodes: Vec<String> = ifaces.keys().cloned().collect();
    on_each(cluster, &nodes, |n| {
        let dsts = to.get(n).map(Vec::as_slice).unwrap_or(&[]);
        for i in &ifaces[n] {
            root_script(cluster, n, "tc (netem)", &apply_script(i, spec, dsts))?;
        }
        Ok(())
    })
}

/// Removes faultline's qdiscs from the given interfaces, retrying each node.
pub fn heal(cluster: &Cluster, ifaces: &BTreeMap<String, Vec<String>>) -> BTreeMap<String, String> {
    let nodes: Vec<String> = ifaces.keys().cloned().collect();
    on_each_retrying(cluster, &nodes, |n| {
        for i in &ifaces[n] {
            root_script(cluster, n, "tc (heal netem)", &heal_script(i))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_and_qdisc_output_parse() {
        let route = "10.250.3.2 dev eth0 src 10.250.3.1 uid 0 \\    cache \n";
        assert_eq!(parse_route_devs(route), vec!["eth0"]);
        assert_eq!(root_handle("qdisc noqueue 0: root refcnt 2 \n"), Some("0:"));
        assert_eq!(
            root_handle("qdisc netem fa17: root refcnt 2 limit 1000 delay 200ms\n"),
            Some("fa17:")
        );
        assert_eq!(root_handle(""), None);
    }
}
