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
//!
//! The kind `netem`: [`NetemFaultSpec`] (target and destination sets, [`NetemSpec`]),
//! [`NetemFault`] (concrete nodes), [`NetemUndo`] (the interfaces to clean).

use crate::fault::{opt_duration, Apply, Heal, NodeErrors, Package, Spec, Targets};
use crate::registry::{FaultSpec, Kind};
use crate::remote::{all_ok, collect_each, on_each, on_each_retrying, root_script};
use crate::{helper, FaultRng, Nemesis, NemesisError};
use clusters::{quote, Cluster};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

/// The kind `netem` (see [`Package`]).
pub struct Netem;

impl Package for Netem {
    const NAME: &'static str = "netem";
    const ABOUT: &'static str =
        "packet faults: delay, loss, reordering, corruption, rate (tc netem or its emulator)";
    const COLOR: [u8; 3] = [160, 110, 200];

    /// Delay with jitter, loss, reordering or corruption, on random targets.
    fn random(rng: &mut FaultRng) -> FaultSpec {
        let spec = match rng.random_range(0..4) {
            0 => NetemSpec {
                delay: Some(Duration::from_millis(rng.random_range(20..=200))),
                jitter: Some(Duration::from_millis(rng.random_range(0..=50))),
                ..NetemSpec::default()
            },
            1 => NetemSpec {
                loss: Some(f64::from(rng.random_range(5..=40u32))),
                ..NetemSpec::default()
            },
            2 => NetemSpec {
                delay: Some(Duration::from_millis(50)),
                reorder: Some(f64::from(rng.random_range(10..=50u32))),
                ..NetemSpec::default()
            },
            _ => NetemSpec {
                corrupt: Some(f64::from(rng.random_range(1..=10u32))),
                ..NetemSpec::default()
            },
        };
        FaultSpec::Netem(NetemFaultSpec {
            targets: Targets::random(rng),
            to: None,
            spec,
        })
    }
}

/// Packet faults as asked for: on the targets' outgoing traffic (to `to` only, when given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetemFaultSpec {
    /// Nodes whose outgoing packets are affected.
    pub targets: Targets,
    /// Only packets to these nodes (default: all traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<Targets>,
    /// The faults.
    pub spec: NetemSpec,
}

/// Packet faults as applied: on the outgoing traffic of `nodes` (to `to` only, when not
/// empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetemFault {
    /// Affected nodes.
    pub nodes: Vec<String>,
    /// Only traffic to these nodes (empty: all traffic).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
    /// The faults.
    pub spec: NetemSpec,
}

/// Remove faultline's root qdisc from these interfaces, per node (and the emulator).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetemUndo {
    /// Node to interfaces.
    pub ifaces: BTreeMap<String, Vec<String>>,
}

impl Spec for NetemFaultSpec {
    type Fault = NetemFault;

    fn resolve<R: Rng>(&self, nem: &Nemesis<'_>, rng: &mut R) -> Result<NetemFault, NemesisError> {
        self.spec.validate()?;
        let nodes = nem.cluster().nodes();
        Ok(NetemFault {
            nodes: self.targets.resolve(&nodes, || nem.primaries(), rng)?,
            to: match &self.to {
                Some(t) => t.resolve(&nodes, || nem.primaries(), rng)?,
                None => Vec::new(),
            },
            spec: self.spec.clone(),
        })
    }
}

impl Apply for NetemFault {
    const KIND: Kind = Kind::Netem;
    type Undo = NetemUndo;
    type Plan = NetemPlan;

    fn plan(&self, nem: &Nemesis<'_>) -> Result<(NetemUndo, NetemPlan), NemesisError> {
        self.spec.validate()?;
        let dests = destinations(nem, &self.nodes, &self.to)?;
        let plan = plan(nem.cluster(), &self.nodes, &dests)?;
        if !plan.emulate.is_empty() {
            let list: Vec<String> = plan.emulate.iter().cloned().collect();
            if self.spec.duplicate.is_some() {
                return Err(NemesisError::Refused(format!(
                    "the kernel of {} has no netem, and duplication cannot be emulated without it (delay, jitter, loss, reorder, corrupt and rate can)",
                    list.join(", ")
                )));
            }
            all_ok(helper::install(nem.cluster(), &list, &nem.helper()?))?;
        }
        let undo = NetemUndo {
            ifaces: plan.ifaces.clone(),
        };
        Ok((undo, plan))
    }

    fn apply(
        &self,
        nem: &Nemesis<'_>,
        _undo: &NetemUndo,
        plan: NetemPlan,
        id: u64,
    ) -> Result<NodeErrors, NemesisError> {
        let to_addrs = if self.to.is_empty() {
            BTreeMap::new()
        } else {
            destinations(nem, &self.nodes, &self.to)?
        };
        if !plan.emulate.is_empty() {
            tracing::info!(nodes = ?plan.emulate, "no netem in the kernel: emulating packet faults in user space");
        }
        Ok(apply(
            nem.cluster(),
            &plan,
            &self.spec,
            &to_addrs,
            id,
            helper::HELPER_PATH,
        ))
    }

    fn nodes(&self) -> Vec<String> {
        self.nodes.clone()
    }
}

impl fmt::Display for NetemFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.to.is_empty() {
            write!(f, "netem {} on {}", self.spec, self.nodes.join(","))
        } else {
            write!(
                f,
                "netem {} from {} to {}",
                self.spec,
                self.nodes.join(","),
                self.to.join(",")
            )
        }
    }
}

impl fmt::Display for NetemUndo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .ifaces
            .iter()
            .map(|(n, i)| format!("{n} ({})", i.join(",")))
            .collect();
        write!(f, "remove the packet faults of {}", parts.join(", "))
    }
}

impl Heal for NetemUndo {
    fn heal(&self, nem: &Nemesis<'_>) -> NodeErrors {
        heal(nem.cluster(), &self.ifaces)
    }

    fn nodes(&self) -> Vec<String> {
        self.ifaces.keys().cloned().collect()
    }
}

/// The addresses each of `nodes` routes packet faults towards: those of `to`, or of all its
/// peers.
fn destinations(
    nem: &Nemesis<'_>,
    nodes: &[String],
    to: &[String],
) -> Result<BTreeMap<String, Vec<Ipv4Addr>>, NemesisError> {
    let addrs = nem.addresses()?;
    let mut out = BTreeMap::new();
    for n in nodes {
        let own: Vec<Ipv4Addr> = addrs.get(n).cloned().unwrap_or_default();
        let peers: Vec<Ipv4Addr> = addrs
            .iter()
            .filter(|(m, _)| *m != n && (to.is_empty() || to.contains(m)))
            .flat_map(|(_, a)| a.iter().copied())
            .filter(|a| !own.contains(a))
            .collect();
        out.insert(n.clone(), peers);
    }
    Ok(out)
}

/// Packet faults applied with `tc netem`. Percentages are 0-100.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetemSpec {
    /// Added delay.
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub delay: Option<Duration>,
    /// Jitter around the delay (needs a delay).
    #[serde(
        default,
        with = "opt_duration",
        skip_serializing_if = "Option::is_none"
    )]
    pub jitter: Option<Duration>,
    /// Packets lost, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<f64>,
    /// Packets duplicated, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate: Option<f64>,
    /// Packets sent at once, out of order, in percent (needs a delay).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reorder: Option<f64>,
    /// Packets with a flipped bit, in percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<f64>,
    /// Rate limit in kilobits per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_kbit: Option<u64>,
}

impl NetemSpec {
    /// Checks the combination and the ranges.
    pub fn validate(&self) -> Result<(), NemesisError> {
        let bad = |m: String| Err(NemesisError::BadFault(m));
        if *self == NetemSpec::default() {
            return bad(
                "netem needs at least one of delay, loss, duplicate, reorder, corrupt, rate".into(),
            );
        }
        if self.jitter.is_some() && self.delay.is_none() {
            return bad("jitter needs a delay".into());
        }
        if self.reorder.is_some() && self.delay.is_none() {
            return bad(
                "reorder needs a delay (netem reorders by sending some packets without it)".into(),
            );
        }
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(p) = v {
                if !(0.0..=100.0).contains(&p) {
                    return bad(format!("{name} {p}: expected a percentage from 0 to 100"));
                }
            }
        }
        if self.rate_kbit == Some(0) {
            return bad("rate 0: expected a positive rate in kbit/s".into());
        }
        Ok(())
    }

    /// The netem arguments (`delay 200ms 50ms loss 5% ...`).
    pub fn tc_args(&self) -> Vec<String> {
        let ms = |d: Duration| format!("{}us", d.as_micros());
        let mut a = Vec::new();
        if let Some(d) = self.delay {
            a.push("delay".into());
            a.push(ms(d));
            if let Some(j) = self.jitter {
                a.push(ms(j));
            }
        }
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(p) = v {
                a.push(name.into());
                a.push(format!("{p}%"));
            }
        }
        if let Some(r) = self.rate_kbit {
            a.push("rate".into());
            a.push(format!("{r}kbit"));
        }
        a
    }
}

impl fmt::Display for NetemSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = self.delay {
            parts.push(format!("delay {}", humantime::format_duration(d)));
        }
        if let Some(j) = self.jitter {
            parts.push(format!("jitter {}", humantime::format_duration(j)));
        }
        for (name, v) in [
            ("loss", self.loss),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
            ("corrupt", self.corrupt),
        ] {
            if let Some(p) = v {
                parts.push(format!("{name} {p}%"));
            }
        }
        if let Some(r) = self.rate_kbit {
            parts.push(format!("rate {r}kbit"));
        }
        f.write_str(&parts.join(" "))
    }
}

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

/// [`heal_emulator_script`] for heal's sweep: also prints a line when the emulator was there.
pub(crate) fn sweep_emulator_script() -> String {
    format!(
        "if {{ command -v iptables >/dev/null && iptables -w -n -L {QUEUE_CHAIN} >/dev/null 2>&1; }} || [ -f {EMULATOR_PID} ]; then echo 'stopped the packet-fault emulator (iptables chain {QUEUE_CHAIN})'; fi\n{}",
        heal_emulator_script()
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

    #[test]
    fn netem_args_and_validation() {
        let spec = NetemSpec {
            delay: Some(Duration::from_millis(200)),
            jitter: Some(Duration::from_millis(50)),
            loss: Some(5.0),
            ..NetemSpec::default()
        };
        spec.validate().unwrap();
        assert_eq!(
            spec.tc_args(),
            ["delay", "200000us", "50000us", "loss", "5%"]
        );
        assert!(NetemSpec::default().validate().is_err());
        let no_delay = NetemSpec {
            jitter: Some(Duration::from_millis(5)),
            ..NetemSpec::default()
        };
        assert!(no_delay.validate().is_err());
        let too_much = NetemSpec {
            loss: Some(150.0),
            ..NetemSpec::default()
        };
        assert!(too_much.validate().is_err());
    }
}
