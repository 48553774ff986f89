//! The registry of fault kinds: the one place that lists them. From the list below, the
//! macro makes
//!
//! - [`Kind`]: the kinds that `--nemesis` enables (one per [`Package`]);
//! - [`FaultSpec`] and [`Fault`]: one variant per shape of fault (a kind may have several:
//!   clock has a bump and a strobe), serialized with a `"fault"` tag (the variant's name in
//!   kebab-case: `clock-bump`);
//! - [`Undo`]: one variant per way of undoing, serialized with an `"undo"` tag;
//!
//! and their dispatch to the kinds' trait implementations. The tags are part of the journal,
//! test.yaml and history formats: a variant's name must never change.
//!
//! To add a kind, write its module (see ARCHITECTURE.md, "How to add a fault kind") and add
//! one line to each list below. The order of `kinds` is the order in which a schedule draws
//! them (a seed's schedule depends on it): add new kinds at the end.

use crate::fault::{Apply, Heal, NodeErrors, Package, Spec};
use crate::{
    clock, corrupt, disk, netem, partition, power, process, FaultRng, Nemesis, NemesisError,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! registry {
    (
        kinds { $( $(#[$kdoc:meta])* $K:ident => $KP:ty, )+ }
        faults { $( $(#[$fdoc:meta])* $V:ident ( $S:ty => $F:ty ), )+ }
        undos { $( $(#[$udoc:meta])* $U:ident ( $UT:ty ), )+ }
    ) => {
        /// A kind of fault that `--nemesis` can enable; see [`Package`]. Serialized (in
        /// test.yaml's `kinds`) as its name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Kind {
            $( $(#[$kdoc])* $K, )+
        }

        impl Kind {
            /// Every kind, in registry order.
            pub const ALL: &'static [Kind] = &[ $( Kind::$K, )+ ];

            /// Its name (`partition`, `clock`, ...): in `--nemesis`, history ops and plots.
            pub fn name(self) -> &'static str {
                match self { $( Kind::$K => <$KP as Package>::NAME, )+ }
            }

            /// One line on what it does.
            pub fn about(self) -> &'static str {
                match self { $( Kind::$K => <$KP as Package>::ABOUT, )+ }
            }

            /// The colour of its intervals in plots (red, green, blue).
            pub fn color(self) -> [u8; 3] {
                match self { $( Kind::$K => <$KP as Package>::COLOR, )+ }
            }

            /// Whether it needs faultline's lazy filesystem over the database's data
            /// directory (see [`Package::ON_LAZYFS`]).
            pub fn on_lazyfs(self) -> bool {
                match self { $( Kind::$K => <$KP as Package>::ON_LAZYFS, )+ }
            }

            /// A random fault of this kind, for a schedule.
            pub fn random_spec(self, rng: &mut FaultRng) -> FaultSpec {
                match self { $( Kind::$K => <$KP as Package>::random(rng), )+ }
            }
        }

        /// A fault as asked for, before random choices and the database's primaries are
        /// resolved. This is what a schedule holds.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "fault", rename_all = "kebab-case")]
        pub enum FaultSpec {
            $( $(#[$fdoc])* $V($S), )+
        }

        /// A fault with every choice made: concrete nodes and values. This is what is
        /// journaled and written into histories as a `process: "nemesis"` op.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "fault", rename_all = "kebab-case")]
        pub enum Fault {
            $( $(#[$fdoc])* $V($F), )+
        }

        /// What heal does to undo a fault. Found out before the fault is applied (which
        /// interfaces, which processes) and journaled with it, so that another faultline
        /// process can heal it.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "undo", rename_all = "kebab-case")]
        pub enum Undo {
            $( $(#[$udoc])* $U($UT), )+
        }

        $(
            impl From<$S> for FaultSpec {
                fn from(s: $S) -> FaultSpec {
                    FaultSpec::$V(s)
                }
            }
            impl From<$F> for Fault {
                fn from(f: $F) -> Fault {
                    Fault::$V(f)
                }
            }
        )+
        $(
            impl From<$UT> for Undo {
                fn from(u: $UT) -> Undo {
                    Undo::$U(u)
                }
            }
        )+

        impl FaultSpec {
            /// The kind of fault asked for.
            pub fn kind(&self) -> Kind {
                match self { $( FaultSpec::$V(_) => <$F as Apply>::KIND, )+ }
            }

            /// Makes every choice (see [`Spec::resolve`]).
            pub(crate) fn resolve_with<R: Rng>(
                &self,
                nem: &Nemesis<'_>,
                rng: &mut R,
            ) -> Result<Fault, NemesisError> {
                match self {
                    $( FaultSpec::$V(s) => <$S as Spec>::resolve(s, nem, rng).map(Fault::$V), )+
                }
            }
        }

        impl Fault {
            /// The kind of fault.
            pub fn kind(&self) -> Kind {
                match self { $( Fault::$V(_) => <$F as Apply>::KIND, )+ }
            }

            /// The nodes it acts on.
            pub fn nodes(&self) -> Vec<String> {
                match self { $( Fault::$V(f) => Apply::nodes(f), )+ }
            }

            /// Whether applying it undoes a pending fault with `undo` by itself.
            pub fn supersedes(&self, undo: &Undo) -> bool {
                match self { $( Fault::$V(f) => Apply::supersedes(f, undo), )+ }
            }

            /// Plans, journals and applies it through [`Nemesis`]'s generic steps.
            pub(crate) fn apply_with(
                &self,
                nem: &Nemesis<'_>,
            ) -> Result<(u64, Undo), NemesisError> {
                match self { $( Fault::$V(f) => nem.apply_kind(self, f), )+ }
            }

            fn kind_history_value(&self) -> Option<serde_json::Value> {
                match self { $( Fault::$V(f) => Apply::history_value(f), )+ }
            }
        }

        impl fmt::Display for Undo {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( Undo::$U(x) => fmt::Display::fmt(x, f), )+ }
            }
        }

        impl fmt::Display for Fault {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self { $( Fault::$V(x) => fmt::Display::fmt(x, f), )+ }
            }
        }

        impl Undo {
            /// The nodes this undo touches.
            pub fn nodes(&self) -> Vec<String> {
                match self { $( Undo::$U(u) => Heal::nodes(u), )+ }
            }

            /// The database whose hooks undoing needs, if any.
            pub fn database(&self) -> Option<&str> {
                match self { $( Undo::$U(u) => Heal::database(u), )+ }
            }

            /// How another faultline process opens the database undoing needs, if recorded.
            pub fn source(&self) -> Option<&crate::process::DbSource> {
                match self { $( Undo::$U(u) => Heal::source(u), )+ }
            }

            /// The part of this undo that is recorded on `node` (see [`Heal::on_node`]).
            pub fn on_node(&self, node: &str) -> Option<Undo> {
                match self { $( Undo::$U(u) => Heal::on_node(u, node).map(Undo::$U), )+ }
            }

            /// Undoes the fault on its nodes (see [`Heal::heal`]).
            pub(crate) fn heal_with(&self, nem: &Nemesis<'_>) -> NodeErrors {
                match self { $( Undo::$U(u) => Heal::heal(u, nem), )+ }
            }
        }
    };
}

registry! {
    kinds {
        /// Network partitions ([`partition`]).
        Partition => partition::Partition,
        /// Packet faults: delay, loss, reordering, corruption, rate ([`netem`]).
        Netem => netem::Netem,
        /// SIGKILL and restart of the database ([`process`]).
        Kill => process::Kill,
        /// SIGSTOP and SIGCONT of the database ([`process`]).
        Pause => process::Pause,
        /// Clock bumps and strobes ([`clock`]).
        Clock => clock::Clock,
        /// Power loss: SIGKILL and the loss of what was never fsynced ([`power`]).
        Power => power::Power,
        /// No space left on the database's disk ([`disk`]).
        DiskFull => disk::DiskFull,
        /// I/O errors on the database's files ([`disk`]).
        DiskError => disk::DiskError,
        /// A slow disk under the database ([`disk`]).
        DiskSlow => disk::DiskSlow,
        /// A file of the database damaged ([`corrupt`]).
        Corrupt => corrupt::Corrupt,
    }
    faults {
        /// Each node drops packets from the nodes its grudge names.
        Partition(partition::PartitionFaultSpec => partition::PartitionFault),
        /// Packet faults on some nodes' outgoing traffic.
        Netem(netem::NetemFaultSpec => netem::NetemFault),
        /// The database killed with SIGKILL; heal restarts it.
        Kill(process::KillSpec => process::KillFault),
        /// The database paused with SIGSTOP; heal resumes it.
        Pause(process::PauseSpec => process::PauseFault),
        /// Clocks moved by an offset.
        ClockBump(clock::ClockBumpSpec => clock::ClockBumpFault),
        /// Clocks jumping back and forth.
        ClockStrobe(clock::ClockStrobeSpec => clock::ClockStrobeFault),
        /// The database killed and what it never synced dropped; heal starts it again.
        Power(power::PowerSpec => power::PowerFault),
        /// The database's disk full: ENOSPC past each file's end and for new files.
        DiskFull(disk::DiskFullSpec => disk::DiskFullFault),
        /// EIO on reads and writes of the database's files, with a probability.
        DiskError(disk::DiskErrorSpec => disk::DiskErrorFault),
        /// Latency on the database's fsyncs and writes.
        DiskSlow(disk::DiskSlowSpec => disk::DiskSlowFault),
        /// The database killed and one of its files damaged; heal starts it again.
        Corrupt(corrupt::CorruptSpec => corrupt::CorruptFault),
    }
    undos {
        /// Remove faultline's iptables chain.
        Partition(partition::PartitionUndo),
        /// Remove faultline's qdiscs and packet-fault emulator.
        Netem(netem::NetemUndo),
        /// Send SIGCONT to the paused processes.
        Resume(process::Resume),
        /// Start the database again where it is not running.
        Restart(process::Restart),
        /// Set clocks back to the controller's time and restart time sync.
        ResetClock(clock::ResetClock),
        /// Drop what was never synced where the database is down, and start it again.
        PowerOn(power::PowerOn),
        /// Unmount the lazy filesystem from a database's data directory (restarting the
        /// database on its plain directory if it ran).
        Unmount(power::Unmount),
        /// Clear a disk fault on the lazy filesystem, and start the database where it is
        /// not running.
        DiskClear(disk::DiskClear),
    }
}

impl Kind {
    /// The kind named `name` (as in `--nemesis`), if there is one.
    pub fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// Parses a comma-separated list of kinds (`partition,kill,pause,clock,netem`, or
    /// `none`), each once, in registry order.
    pub fn parse_list(s: &str) -> Result<Vec<Kind>, NemesisError> {
        let mut out = Vec::new();
        for word in s.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            if word == "none" {
                continue;
            }
            let k = Kind::from_name(word).ok_or_else(|| {
                let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                NemesisError::BadFault(format!(
                    "unknown nemesis {word:?}: expected a comma-separated list of {} (or none)",
                    names.join(", ")
                ))
            })?;
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out.sort();
        Ok(out)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for Kind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let name = String::deserialize(d)?;
        Kind::from_name(&name).ok_or_else(|| {
            let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
            serde::de::Error::custom(format!(
                "unknown fault kind {name:?}: expected one of {}",
                names.join(", ")
            ))
        })
    }
}

impl Fault {
    /// The value written into the history: a grudge for partitions (as DESIGN.md shows),
    /// the journaled form of the fault (its tag, nodes and parameters) otherwise.
    pub fn history_value(&self) -> serde_json::Value {
        self.kind_history_value()
            .unwrap_or_else(|| serde_json::to_value(self).unwrap_or_default())
    }
}
