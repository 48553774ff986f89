//! Packet faults with `tc netem` on the interfaces a node uses to reach its peers: on all
//! outgoing traffic, or (with a `prio` qdisc and `u32` filters) only on packets to chosen
//! nodes. faultline's qdiscs carry the handle `fa17:`; heal deletes a root qdisc only when
//! it is faultline's, and applying refuses to replace a root qdisc that someone else
//! configured.
//!
//! On a kernel built without `sch_netem` (or `sch_prio`), the same faults (but duplication)
//! are emulated in user space by [`crate::emulator`], fed by an NFQUEUE rule in faultline's
//! chain `FAULTLINE-NETEM` on OUTPUT. The node's SSH replies are exempt there, so that the
//! controller keeps its hold on the node. Heal removes both kinds, whichever was used.

use crate::fault::NetemSpec;
use crate::remote::{collect_each, on_each, on_each_retrying, root_script};
use crate::NemesisError;
use clusters::{quote, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

/// The handle of faultline's root qdiscs.
pub const HANDLE: &str = "fa17:";

/// The iptables chain (on OUTPUT) that feeds the user-space emulator.
pub const QUEUE_CHAIN: &str = "FAULTLINE-NETEM";

/// Where the emulator's PID and log are kept on a node.
const EMULATOR_PID: &str = "/run/faultline-netem.pid";
const EMULATOR_LOG: &str = "/run/faultline-netem.log";

/// How packet faults will be applied on each node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetemPlan {
    /// Node to the interfaces that carry its packets to the chosen destinations.
    pub ifaces: BTreeMap<String, Vec<String>>,
    /// Nodes whose kernel lacks netem: the faults are emulated in user space there.
    pub emulate: BTreeSet<String>,
}

/// A read-only probe printing `netem` when the kernel has sch_netem and sch_prio (built in or
/// as modules), `no-netem` when it clearly does not.
const PROBE: &str = "k=$(uname -r)\n\
if [ -r /proc/config.gz ]; then cfg=$(zcat /proc/config.gz 2>/dev/null); \
elif [ -r /boot/config-$k ]; then cfg=$(cat /boot/config-$k); else cfg=''; fi\n\
if [ -n \"$cfg\" ]; then\n\
  if printf '%s\\n' \"$cfg\" | grep -q '^CONFIG_NET_SCH_NETEM=[ym]' && printf '%s\\n' \"$cfg\" | grep -q '^CONFIG_NET_SCH_PRIO=[ym]'; then echo netem; else echo no-netem; fi\n\
elif [ -d /lib/modules/$k ]; then\n\
  if grep -qs sch_netem /lib/modules/$k/modules.builtin /lib/modules/$k/modules.dep; then echo netem; else echo no-netem; fi\n\
else echo netem; fi\n";

/// Finds, on each of `nodes`, the interfaces that carry its packets to `dests` (`ip route
/// get`), and checks that their root qdisc is the kernel's default or faultline's own.
pub fn plan(
    cluster: &Cluster,
    nodes: &[String],
    dests: &BTreeMap<String, Vec<Ipv4Addr>>,
) -> Result<NetemPlan, NemesisError> {
    let found = collect_each(cluster, nodes, |n| {
        let addrs: Vec<String> = dests
            .get(n)
            .into_iter()
            .flatten()
            .map(|a| quote(&a.to_string()))
            .collect();
        if addrs.is_empty() {
            return Err(NemesisError::BadFault(format!(
                "{n}: no peer address to route packet faults towards"
            )));
        }
        let script = format!(
            "command -v tc >/dev/null || {{ echo 'tc (iproute2) is not installed on this node' >&2; exit 127; }}\n\
             for a in {}; do ip -o route get \"$a\"; done\n{PROBE}",
            addrs.join(" ")
        );
        let out = root_script(cluster, n, "ip route get", &script)?;
        let text = out.stdout_text();
        let emulate = text.lines().any(|l| l.trim() == "no-netem");
        let mut ifaces: Vec<String> = parse_route_devs(&text);
        ifaces.sort();
        ifaces.dedup();
        for i in &ifaces {
            let out = root_script(
                cluster,
                n,
                "tc qdisc show",
                &format!("tc qdisc show dev {} root", quote(i)),
            )?;
            let text = out.stdout_text();
            if let Some(h) = root_handle(&text) {
                if h != "0:" && h != HANDLE {
                    return Err(NemesisError::Refused(format!(
                        "{n}: interface {i} has a root qdisc configured by someone else ({}); faultline will not replace it",
                        text.trim()
                    )));
                }
            }
        }
        Ok((ifaces, emulate))
    })?;
    let mut out = NetemPlan::default();
    for (node, (ifaces, emulate)) in found {
        if emulate {
            out.emulate.insert(node.clone());
        }
        out.ifaces.insert(node, ifaces);
    }
    Ok(out)
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

/// The script that removes the emulator's chain and stops the emulator (if there are any).
pub fn heal_emulator_script() -> String {
    format!(
        "if command -v iptables >/dev/null; then\n\
           iptables -w -F {QUEUE_CHAIN} 2>/dev/null || true\n\
           while iptables -w -D OUTPUT -j {QUEUE_CHAIN} 2>/dev/null; do :; done\n\
           iptables -w -X {QUEUE_CHAIN} 2>/dev/null || true\n\
         fi\n\
         if [ -f {EMULATOR_PID} ]; then kill \"$(cat {EMULATOR_PID})\" 2>/dev/null || true; rm -f {EMULATOR_PID}; fi\n"
    )
}

/// The script that starts the emulator with `spec` and queues the node's outgoing packets
/// (to `to` only, when not empty) to it, SSH replies excepted.
fn emulator_script(
    spec: &NetemSpec,
    seed: u64,
    to: &[Ipv4Addr],
    ssh_ports: &BTreeSet<u16>,
    helper: &str,
) -> Result<String, NemesisError> {
    let json = serde_json::to_string(spec)
        .map_err(|e| NemesisError::BadFault(format!("netem spec: {e}")))?;
    let cmd = [
        helper,
        "node",
        "netem-queue",
        "--spec",
        &json,
        "--seed",
        &seed.to_string(),
    ]
    .iter()
    .map(|a| quote(a))
    .collect::<Vec<_>>()
    .join(" ");
    let mut s = format!(
        "set -e\n\
         command -v iptables >/dev/null || {{ echo 'iptables is not installed on this node' >&2; exit 127; }}\n\
         {heal}\
         rm -f {EMULATOR_LOG}\n\
         setsid {cmd} </dev/null >{EMULATOR_LOG} 2>&1 &\n\
         echo $! > {EMULATOR_PID}\n\
         i=0; until grep -qs ready {EMULATOR_LOG}; do i=$((i+1)); if [ $i -gt 200 ]; then cat {EMULATOR_LOG} >&2; echo 'the packet-fault emulator did not start' >&2; exit 1; fi; sleep 0.01; done\n\
         iptables -w -N {QUEUE_CHAIN}\n\
         iptables -w -A {QUEUE_CHAIN} -o lo -j RETURN\n",
        heal = heal_emulator_script()
    );
    for p in ssh_ports {
        s.push_str(&format!(
            "iptables -w -A {QUEUE_CHAIN} -p tcp --sport {p} -j RETURN\n"
        ));
    }
    if to.is_empty() {
        s.push_str(&format!(
            "iptables -w -A {QUEUE_CHAIN} -j NFQUEUE --queue-num {} --queue-bypass\n",
            crate::emulator::QUEUE
        ));
    } else {
        for a in to {
            s.push_str(&format!(
                "iptables -w -A {QUEUE_CHAIN} -d {}/32 -j NFQUEUE --queue-num {} --queue-bypass\n",
                quote(&a.to_string()),
                crate::emulator::QUEUE
            ));
        }
    }
    s.push_str(&format!("iptables -w -I OUTPUT 1 -j {QUEUE_CHAIN}\n"));
    Ok(s)
}

/// Applies `spec` as planned on each node, in parallel: with tc netem, or with the
/// user-space emulator (`helper` is its path on the node) where the kernel lacks netem.
pub fn apply(
    cluster: &Cluster,
    plan: &NetemPlan,
    spec: &NetemSpec,
    to: &BTreeMap<String, Vec<Ipv4Addr>>,
    seed: u64,
    helper: &str,
) -> BTreeMap<String, String> {
    let nodes: Vec<String> = plan.ifaces.keys().cloned().collect();
    let ssh_ports: BTreeSet<u16> = [22, cluster.file().ssh.port.unwrap_or(22)].into();
    on_each(cluster, &nodes, |n| {
        let dsts = to.get(n).map(Vec::as_slice).unwrap_or(&[]);
        if plan.emulate.contains(n) {
            let script = emulator_script(spec, seed, dsts, &ssh_ports, helper)?;
            root_script(cluster, n, "packet-fault emulator", &script)?;
            return Ok(());
        }
        for i in &plan.ifaces[n] {
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
        root_script(
            cluster,
            n,
            "heal packet-fault emulator",
            &heal_emulator_script(),
        )?;
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
