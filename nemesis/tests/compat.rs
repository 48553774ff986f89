//! The serialized forms of every fault kind are contracts (DESIGN.md): journal lines
//! (nemesis.jsonl and the cluster's journal), test.yaml's schedule, and the history's
//! `process: "nemesis"` ops. The literals below were printed by faultline before fault kinds
//! moved into their own modules (commit c9b74a5); each kind's forms must still serialize to
//! exactly these bytes and read back to the same values, so that old journals still heal and
//! old runs still replay.

use nemesis::clock::{
    ClockBumpFault, ClockBumpSpec, ClockStrobeFault, ClockStrobeSpec, ResetClock,
};
use nemesis::corrupt::{CorruptFault, CorruptMode, CorruptSpec, Damage};
use nemesis::disk::{
    DiskClear, DiskErrorFault, DiskErrorSpec, DiskFullFault, DiskFullSpec, DiskSlowFault,
    DiskSlowSpec,
};
use nemesis::event::NemesisEvent;
use nemesis::fault::PartitionSpec;
use nemesis::journal::{Event, JournalEntry};
use nemesis::lazyfs::{DiskKind, ErrorFault, FileSet, SlowFault};
use nemesis::netem::{NetemFault, NetemFaultSpec, NetemUndo};
use nemesis::partition::{PartitionFault, PartitionFaultSpec, PartitionUndo};
use nemesis::power::{PowerFault, PowerMode, PowerOn, PowerSpec, Unmount};
use nemesis::process::{DbSource, KillFault, KillSpec, PauseFault, PauseSpec, Restart, Resume};
use nemesis::schedule::{Kind, Schedule};
use nemesis::{Fault, FaultSpec, Grudge, Journal, NetemSpec, Targets, Topology, Undo};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::Duration;

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `value` serializes to exactly `json`, and `json` reads back as `value`.
fn same<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T, json: &str) {
    assert_eq!(serde_json::to_string(value).expect("serialize"), json);
    let back: T = serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(&back, value, "{json}");
}

fn grudge() -> Grudge {
    Grudge::complete(&[names(&["n1"]), names(&["n2", "n3"])])
}

#[test]
fn specs_keep_their_json() {
    let cases: Vec<(FaultSpec, &str)> = vec![
        (
            PartitionFaultSpec {
                partition: PartitionSpec::Topology(Topology::MajoritiesRing),
            }
            .into(),
            r#"{"fault":"partition","partition":{"topology":"majorities-ring"}}"#,
        ),
        (
            PartitionFaultSpec {
                partition: PartitionSpec::Topology(Topology::Isolate("n2".into())),
            }
            .into(),
            r#"{"fault":"partition","partition":{"topology":"isolate","node":"n2"}}"#,
        ),
        (
            PartitionFaultSpec {
                partition: PartitionSpec::Grudge(grudge()),
            }
            .into(),
            r#"{"fault":"partition","partition":{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}}"#,
        ),
        (
            NetemFaultSpec {
                targets: Targets::Minority,
                to: Some(Targets::parse("n3,n4")),
                spec: NetemSpec {
                    delay: Some(Duration::from_millis(120)),
                    jitter: Some(Duration::from_millis(7)),
                    loss: Some(5.5),
                    duplicate: Some(1.0),
                    reorder: Some(20.0),
                    corrupt: Some(3.0),
                    rate_kbit: Some(800),
                },
            }
            .into(),
            r#"{"fault":"netem","targets":"minority","to":{"nodes":["n3","n4"]},"spec":{"delay":"120ms","jitter":"7ms","loss":5.5,"duplicate":1.0,"reorder":20.0,"corrupt":3.0,"rate_kbit":800}}"#,
        ),
        (
            NetemFaultSpec {
                targets: Targets::All,
                to: None,
                spec: NetemSpec {
                    loss: Some(30.0),
                    ..NetemSpec::default()
                },
            }
            .into(),
            r#"{"fault":"netem","targets":"all","spec":{"loss":30.0}}"#,
        ),
        (
            KillSpec {
                targets: Targets::Primaries,
            }
            .into(),
            r#"{"fault":"kill","targets":"primaries"}"#,
        ),
        (
            PauseSpec {
                targets: Targets::Majority,
            }
            .into(),
            r#"{"fault":"pause","targets":"majority"}"#,
        ),
        (
            PowerSpec {
                targets: Targets::All,
                mode: PowerMode::Torn,
            }
            .into(),
            r#"{"fault":"power","targets":"all","mode":"torn"}"#,
        ),
        (
            DiskFullSpec {
                targets: Targets::One,
            }
            .into(),
            r#"{"fault":"disk-full","targets":"one"}"#,
        ),
        (
            DiskErrorSpec {
                targets: Targets::Minority,
                probability: 0.1,
                reads: false,
                writes: true,
                files: FileSet::Random(0.5),
            }
            .into(),
            r#"{"fault":"disk-error","targets":"minority","probability":0.1,"reads":false,"writes":true,"files":{"random":0.5}}"#,
        ),
        (
            DiskSlowSpec {
                targets: Targets::All,
                delay_ms: 200,
                fsync: true,
                writes: false,
            }
            .into(),
            r#"{"fault":"disk-slow","targets":"all","delay_ms":200,"fsync":true,"writes":false}"#,
        ),
        (
            CorruptSpec {
                targets: Targets::Minority,
                mode: CorruptMode::ZeroRange,
                files: Some("member/*".into()),
            }
            .into(),
            r#"{"fault":"corrupt","targets":"minority","mode":"zero-range","files":"member/*"}"#,
        ),
        (
            ClockBumpSpec {
                targets: Targets::One,
                by_ms: -30000,
            }
            .into(),
            r#"{"fault":"clock-bump","targets":"one","by_ms":-30000}"#,
        ),
        (
            ClockStrobeSpec {
                targets: Targets::parse("n1,n2"),
                delta_ms: 200,
                period_ms: 10,
                duration_ms: 5000,
            }
            .into(),
            r#"{"fault":"clock-strobe","targets":{"nodes":["n1","n2"]},"delta_ms":200,"period_ms":10,"duration_ms":5000}"#,
        ),
    ];
    for (spec, json) in &cases {
        same(spec, json);
    }
}

/// One fault and everything that is written about it.
struct Case {
    fault: Fault,
    undo: Undo,
    fault_json: &'static str,
    undo_json: &'static str,
    start_f: &'static str,
    history_value: &'static str,
    display: &'static str,
    kind: Kind,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            fault: PartitionFault {
                grudge: grudge(),
                topology: Some("majorities-ring".into()),
            }
            .into(),
            undo: PartitionUndo {
                nodes: names(&["n1", "n2", "n3"]),
            }
            .into(),
            fault_json: r#"{"fault":"partition","grudge":{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]},"topology":"majorities-ring"}"#,
            undo_json: r#"{"undo":"partition","nodes":["n1","n2","n3"]}"#,
            start_f: "start-partition",
            history_value: r#"{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}"#,
            display: "partition (majorities-ring): n1 drops n2,n3; n2 drops n1; n3 drops n1",
            kind: Kind::Partition,
        },
        Case {
            fault: PartitionFault {
                grudge: grudge(),
                topology: None,
            }
            .into(),
            undo: PartitionUndo {
                nodes: names(&["n1", "n2", "n3"]),
            }
            .into(),
            fault_json: r#"{"fault":"partition","grudge":{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}}"#,
            undo_json: r#"{"undo":"partition","nodes":["n1","n2","n3"]}"#,
            start_f: "start-partition",
            history_value: r#"{"n1":["n2","n3"],"n2":["n1"],"n3":["n1"]}"#,
            display: "partition: n1 drops n2,n3; n2 drops n1; n3 drops n1",
            kind: Kind::Partition,
        },
        Case {
            fault: NetemFault {
                nodes: names(&["n1"]),
                to: names(&["n3"]),
                spec: NetemSpec {
                    delay: Some(Duration::from_millis(200)),
                    jitter: Some(Duration::from_millis(50)),
                    ..NetemSpec::default()
                },
            }
            .into(),
            undo: NetemUndo {
                ifaces: [("n1".to_string(), names(&["eth0"]))].into(),
            }
            .into(),
            fault_json: r#"{"fault":"netem","nodes":["n1"],"to":["n3"],"spec":{"delay":"200ms","jitter":"50ms"}}"#,
            undo_json: r#"{"undo":"netem","ifaces":{"n1":["eth0"]}}"#,
            start_f: "start-netem",
            history_value: r#"{"fault":"netem","nodes":["n1"],"spec":{"delay":"200ms","jitter":"50ms"},"to":["n3"]}"#,
            display: "netem delay 200ms jitter 50ms from n1 to n3",
            kind: Kind::Netem,
        },
        Case {
            fault: NetemFault {
                nodes: names(&["n1", "n2"]),
                to: vec![],
                spec: NetemSpec {
                    corrupt: Some(4.0),
                    ..NetemSpec::default()
                },
            }
            .into(),
            undo: NetemUndo {
                ifaces: [
                    ("n1".to_string(), names(&["eth0"])),
                    ("n2".to_string(), names(&["eth0", "eth1"])),
                ]
                .into(),
            }
            .into(),
            fault_json: r#"{"fault":"netem","nodes":["n1","n2"],"spec":{"corrupt":4.0}}"#,
            undo_json: r#"{"undo":"netem","ifaces":{"n1":["eth0"],"n2":["eth0","eth1"]}}"#,
            start_f: "start-netem",
            history_value: r#"{"fault":"netem","nodes":["n1","n2"],"spec":{"corrupt":4.0}}"#,
            display: "netem corrupt 4% on n1,n2",
            kind: Kind::Netem,
        },
        Case {
            fault: KillFault {
                db: "etcd".into(),
                nodes: names(&["n2"]),
            }
            .into(),
            undo: Restart {
                db: "etcd".into(),
                nodes: names(&["n2"]),
                source: None,
            }
            .into(),
            fault_json: r#"{"fault":"kill","db":"etcd","nodes":["n2"]}"#,
            undo_json: r#"{"undo":"restart","db":"etcd","nodes":["n2"]}"#,
            start_f: "start-kill",
            history_value: r#"{"db":"etcd","fault":"kill","nodes":["n2"]}"#,
            display: "kill etcd on n2",
            kind: Kind::Kill,
        },
        Case {
            fault: KillFault {
                db: "toy".into(),
                nodes: names(&["n3"]),
            }
            .into(),
            undo: Restart {
                db: "toy".into(),
                nodes: names(&["n3"]),
                source: Some(DbSource {
                    db: "/defs/toy.yaml".into(),
                    options: [("definition-sha256".to_string(), "ab12".to_string())].into(),
                }),
            }
            .into(),
            fault_json: r#"{"fault":"kill","db":"toy","nodes":["n3"]}"#,
            undo_json: r#"{"undo":"restart","db":"toy","nodes":["n3"],"source":{"db":"/defs/toy.yaml","options":{"definition-sha256":"ab12"}}}"#,
            start_f: "start-kill",
            history_value: r#"{"db":"toy","fault":"kill","nodes":["n3"]}"#,
            display: "kill toy on n3",
            kind: Kind::Kill,
        },
        Case {
            fault: PauseFault {
                db: "etcd".into(),
                nodes: names(&["n1", "n3"]),
            }
            .into(),
            undo: Resume {
                pids: [
                    ("n1".to_string(), vec![101, 102]),
                    ("n3".to_string(), vec![7]),
                ]
                .into(),
            }
            .into(),
            fault_json: r#"{"fault":"pause","db":"etcd","nodes":["n1","n3"]}"#,
            undo_json: r#"{"undo":"resume","pids":{"n1":[101,102],"n3":[7]}}"#,
            start_f: "start-pause",
            history_value: r#"{"db":"etcd","fault":"pause","nodes":["n1","n3"]}"#,
            display: "pause etcd on n1,n3",
            kind: Kind::Pause,
        },
        Case {
            fault: ClockBumpFault {
                nodes: names(&["n2"]),
                by_ms: 45000,
            }
            .into(),
            undo: ResetClock {
                nodes: names(&["n2"]),
                time_sync: [("n2".to_string(), names(&["systemd-timesyncd.service"]))].into(),
            }
            .into(),
            fault_json: r#"{"fault":"clock-bump","nodes":["n2"],"by_ms":45000}"#,
            undo_json: r#"{"undo":"reset-clock","nodes":["n2"],"time_sync":{"n2":["systemd-timesyncd.service"]}}"#,
            start_f: "start-clock",
            history_value: r#"{"by_ms":45000,"fault":"clock-bump","nodes":["n2"]}"#,
            display: "clock bump +45000ms on n2",
            kind: Kind::Clock,
        },
        Case {
            fault: ClockStrobeFault {
                nodes: names(&["n1"]),
                delta_ms: 200,
                period_ms: 10,
                duration_ms: 5000,
            }
            .into(),
            undo: ResetClock {
                nodes: names(&["n1"]),
                time_sync: BTreeMap::new(),
            }
            .into(),
            fault_json: r#"{"fault":"clock-strobe","nodes":["n1"],"delta_ms":200,"period_ms":10,"duration_ms":5000}"#,
            undo_json: r#"{"undo":"reset-clock","nodes":["n1"]}"#,
            start_f: "start-clock",
            history_value: r#"{"delta_ms":200,"duration_ms":5000,"fault":"clock-strobe","nodes":["n1"],"period_ms":10}"#,
            display: "clock strobe ±200ms every 10ms for 5000ms on n1",
            kind: Kind::Clock,
        },
        Case {
            fault: PowerFault {
                db: "postgres".into(),
                nodes: names(&["n1", "n2"]),
                mode: PowerMode::LoseUnfsynced,
                data_dir: "/var/lib/faultline-db/postgres/data".into(),
            }
            .into(),
            undo: PowerOn {
                db: "postgres".into(),
                nodes: names(&["n1", "n2"]),
                mode: PowerMode::LoseUnfsynced,
                data_dir: "/var/lib/faultline-db/postgres/data".into(),
                source: Some(DbSource {
                    db: "postgres".into(),
                    options: [("synchronous-commit".to_string(), "off".to_string())].into(),
                }),
            }
            .into(),
            fault_json: r#"{"fault":"power","db":"postgres","nodes":["n1","n2"],"mode":"lose-unfsynced","data_dir":"/var/lib/faultline-db/postgres/data"}"#,
            undo_json: r#"{"undo":"power-on","db":"postgres","nodes":["n1","n2"],"mode":"lose-unfsynced","data_dir":"/var/lib/faultline-db/postgres/data","source":{"db":"postgres","options":{"synchronous-commit":"off"}}}"#,
            start_f: "start-power",
            history_value: r#"{"data_dir":"/var/lib/faultline-db/postgres/data","db":"postgres","fault":"power","mode":"lose-unfsynced","nodes":["n1","n2"]}"#,
            display: "power off postgres on n1,n2 (lose-unfsynced in /var/lib/faultline-db/postgres/data)",
            kind: Kind::Power,
        },
        Case {
            fault: DiskFullFault {
                db: "postgres".into(),
                nodes: names(&["n1"]),
                data_dir: "/var/lib/faultline-db/postgres/data".into(),
            }
            .into(),
            undo: disk_clear(DiskKind::DiskFull),
            fault_json: r#"{"fault":"disk-full","db":"postgres","nodes":["n1"],"data_dir":"/var/lib/faultline-db/postgres/data"}"#,
            undo_json: r#"{"undo":"disk-clear","kind":"disk-full","db":"postgres","nodes":["n1"],"data_dir":"/var/lib/faultline-db/postgres/data","pids":{"n1":[4242]},"source":{"db":"postgres","options":{}}}"#,
            start_f: "start-disk-full",
            history_value: r#"{"data_dir":"/var/lib/faultline-db/postgres/data","db":"postgres","fault":"disk-full","nodes":["n1"]}"#,
            display: "disk full for postgres on n1 (/var/lib/faultline-db/postgres/data)",
            kind: Kind::DiskFull,
        },
        Case {
            fault: DiskErrorFault {
                db: "postgres".into(),
                nodes: names(&["n1"]),
                data_dir: "/var/lib/faultline-db/postgres/data".into(),
                error: ErrorFault {
                    probability: 0.25,
                    reads: true,
                    writes: true,
                    files: FileSet::Pattern("pg_wal/*".into()),
                    seed: 7,
                },
            }
            .into(),
            undo: disk_clear(DiskKind::DiskError),
            fault_json: r#"{"fault":"disk-error","db":"postgres","nodes":["n1"],"data_dir":"/var/lib/faultline-db/postgres/data","probability":0.25,"reads":true,"writes":true,"files":{"pattern":"pg_wal/*"},"seed":7}"#,
            undo_json: r#"{"undo":"disk-clear","kind":"disk-error","db":"postgres","nodes":["n1"],"data_dir":"/var/lib/faultline-db/postgres/data","pids":{"n1":[4242]},"source":{"db":"postgres","options":{}}}"#,
            start_f: "start-disk-error",
            history_value: r#"{"data_dir":"/var/lib/faultline-db/postgres/data","db":"postgres","fault":"disk-error","files":{"pattern":"pg_wal/*"},"nodes":["n1"],"probability":0.25,"reads":true,"seed":7,"writes":true}"#,
            display: "disk errors for postgres on n1 (EIO on 25% of reads and writes of files matching pg_wal/* in /var/lib/faultline-db/postgres/data)",
            kind: Kind::DiskError,
        },
        Case {
            fault: DiskSlowFault {
                db: "postgres".into(),
                nodes: names(&["n1"]),
                data_dir: "/var/lib/faultline-db/postgres/data".into(),
                slow: SlowFault {
                    delay_ms: 200,
                    fsync: true,
                    writes: true,
                },
            }
            .into(),
            undo: disk_clear(DiskKind::DiskSlow),
            fault_json: r#"{"fault":"disk-slow","db":"postgres","nodes":["n1"],"data_dir":"/var/lib/faultline-db/postgres/data","delay_ms":200,"fsync":true,"writes":true}"#,
            undo_json: r#"{"undo":"disk-clear","kind":"disk-slow","db":"postgres","nodes":["n1"],"data_dir":"/var/lib/faultline-db/postgres/data","pids":{"n1":[4242]},"source":{"db":"postgres","options":{}}}"#,
            start_f: "start-disk-slow",
            history_value: r#"{"data_dir":"/var/lib/faultline-db/postgres/data","db":"postgres","delay_ms":200,"fault":"disk-slow","fsync":true,"nodes":["n1"],"writes":true}"#,
            display: "slow disk for postgres on n1 (+200 ms on fsyncs and writes in /var/lib/faultline-db/postgres/data)",
            kind: Kind::DiskSlow,
        },
        Case {
            fault: CorruptFault {
                db: "etcd".into(),
                nodes: names(&["n2"]),
                data_dir: "/var/lib/faultline-db/etcd".into(),
                mode: CorruptMode::Bitflip,
                damage: [(
                    "n2".to_string(),
                    Damage {
                        file: "member/snap/db".into(),
                        size: 20480,
                        offset: Some(4100),
                        len: None,
                        bit: Some(3),
                    },
                )]
                .into(),
                window_ms: None,
            }
            .into(),
            undo: Restart {
                db: "etcd".into(),
                nodes: names(&["n2"]),
                source: None,
            }
            .into(),
            fault_json: r#"{"fault":"corrupt","db":"etcd","nodes":["n2"],"data_dir":"/var/lib/faultline-db/etcd","mode":"bitflip","damage":{"n2":{"file":"member/snap/db","size":20480,"offset":4100,"bit":3}}}"#,
            undo_json: r#"{"undo":"restart","db":"etcd","nodes":["n2"]}"#,
            start_f: "start-corrupt",
            history_value: r#"{"damage":{"n2":{"bit":3,"file":"member/snap/db","offset":4100,"size":20480}},"data_dir":"/var/lib/faultline-db/etcd","db":"etcd","fault":"corrupt","mode":"bitflip","nodes":["n2"]}"#,
            display: "corrupt etcd on n2: n2 member/snap/db bit 3 of byte 4100 flipped; in /var/lib/faultline-db/etcd",
            kind: Kind::Corrupt,
        },
    ]
}

/// The undo of a disk fault of `kind` on postgres's n1.
fn disk_clear(kind: DiskKind) -> Undo {
    DiskClear {
        kind,
        db: "postgres".into(),
        nodes: names(&["n1"]),
        data_dir: "/var/lib/faultline-db/postgres/data".into(),
        pids: [("n1".to_string(), vec![4242])].into(),
        source: Some(DbSource {
            db: "postgres".into(),
            options: BTreeMap::new(),
        }),
    }
    .into()
}

/// The lazy filesystem's record on the nodes (heal's sweep unmounts it): not a fault's undo,
/// but read back by every later heal.
#[test]
fn the_lazy_filesystems_record_keeps_its_form() {
    let u: Undo = Unmount {
        db: "redis-sentinel".into(),
        nodes: names(&["n1"]),
        data_dir: "/var/lib/faultline-db/redis-sentinel".into(),
        source: None,
    }
    .into();
    same(
        &u,
        r#"{"undo":"unmount","db":"redis-sentinel","nodes":["n1"],"data_dir":"/var/lib/faultline-db/redis-sentinel"}"#,
    );
    assert_eq!(u.database(), Some("redis-sentinel"));
}

#[test]
fn faults_undos_and_history_ops_keep_their_forms() {
    for c in cases() {
        same(&c.fault, c.fault_json);
        same(&c.undo, c.undo_json);
        assert_eq!(c.fault.kind(), c.kind);
        assert_eq!(NemesisEvent::start(c.fault.kind()).f(), c.start_f);
        assert_eq!(
            NemesisEvent::stop(c.fault.kind()).f(),
            c.start_f.replace("start-", "stop-")
        );
        assert_eq!(
            serde_json::to_string(&c.fault.history_value()).expect("json"),
            c.history_value
        );
        assert_eq!(c.fault.to_string(), c.display);
    }
}

#[test]
fn journal_lines_keep_their_form_and_old_journals_still_heal() {
    for c in cases() {
        let entry = JournalEntry {
            time: "2026-12-01T23:40:00.000Z".into(),
            id: 3,
            event: Event::Apply,
            fault: Some(c.fault.clone()),
            undo: Some(c.undo.clone()),
            errors: BTreeMap::new(),
            pid: 4242,
        };
        let line = format!(
            r#"{{"time":"2026-12-01T23:40:00.000Z","id":3,"event":"apply","fault":{},"undo":{},"pid":4242}}"#,
            c.fault_json, c.undo_json
        );
        same(&entry, &line);
    }
    // A journal written by the earlier code: every fault pending, one healed, one whose undo
    // predates time-sync recording.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nemesis.jsonl");
    let mut text = String::new();
    for (i, c) in cases().iter().enumerate() {
        text.push_str(&format!(
            "{{\"time\":\"2026-12-01T23:40:00.000Z\",\"id\":{},\"event\":\"apply\",\"fault\":{},\"undo\":{},\"pid\":4242}}\n",
            i + 1,
            c.fault_json,
            c.undo_json
        ));
        text.push_str(&format!(
            "{{\"time\":\"2026-12-01T23:40:00.100Z\",\"id\":{},\"event\":\"applied\",\"pid\":4242}}\n",
            i + 1
        ));
    }
    text.push_str(r#"{"time":"2026-12-01T23:41:00.000Z","id":1,"event":"healed","pid":4242}"#);
    text.push('\n');
    text.push_str(r#"{"time":"2026-12-01T23:41:00.000Z","id":99,"event":"apply","fault":{"fault":"clock-bump","nodes":["n1"],"by_ms":-5000},"undo":{"undo":"reset-clock","nodes":["n1"]},"pid":1}"#);
    text.push('\n');
    std::fs::write(&path, text).expect("write");
    let pending = Journal::open(&path)
        .expect("open")
        .pending()
        .expect("pending");
    let expected: Vec<Fault> = cases().into_iter().skip(1).map(|c| c.fault).collect();
    let got: Vec<Fault> = pending.iter().map(|p| p.fault.clone()).collect();
    assert_eq!(got[..expected.len()], expected[..]);
    assert_eq!(
        pending.last().map(|p| &p.undo),
        Some(&Undo::ResetClock(ResetClock {
            nodes: names(&["n1"]),
            time_sync: BTreeMap::new()
        }))
    );
    assert_eq!(pending[3].undo.database(), Some("etcd"));
}

#[test]
fn a_seed_still_draws_the_same_schedule_in_the_same_json_and_yaml() {
    let kinds = Kind::parse_list("partition,kill,pause,clock,netem").expect("kinds");
    let s = Schedule::generate(&kinds, Duration::from_secs(1), Duration::from_secs(60), 3);
    let json = include_str!("data/schedule-seed3.json").trim_end();
    let yaml = include_str!("data/schedule-seed3.yaml");
    same(&s, json);
    assert_eq!(serde_yaml_ng::to_string(&s).expect("yaml"), yaml);
    assert_eq!(
        serde_yaml_ng::from_str::<Schedule>(yaml).expect("read yaml"),
        s
    );
    // Every shape of fault is in it, so every kind's random choice is pinned.
    for tag in [
        "partition",
        "netem",
        "kill",
        "pause",
        "clock-bump",
        "clock-strobe",
    ] {
        assert!(json.contains(&format!(r#""fault":"{tag}""#)), "{tag}");
    }
    let s = Schedule::generate(
        &Kind::parse_list("clock,pause").expect("kinds"),
        Duration::from_secs(2),
        Duration::from_secs(20),
        5,
    );
    same(
        &s,
        r#"{"seed":5,"kinds":["pause","clock"],"interval_ms":2000,"steps":[{"at_ms":2000,"action":"start","fault":{"fault":"pause","targets":"minority"},"seed":13192752384619366391},{"at_ms":4000,"action":"heal","seed":15062487318933071458},{"at_ms":6000,"action":"start","fault":{"fault":"pause","targets":"all"},"seed":7867458510120808999},{"at_ms":8000,"action":"heal","seed":5290356191783959490},{"at_ms":10000,"action":"start","fault":{"fault":"pause","targets":"all"},"seed":13028612863316183739},{"at_ms":12000,"action":"heal","seed":10722159800012814895},{"at_ms":14000,"action":"start","fault":{"fault":"pause","targets":"all"},"seed":16932757247857035511},{"at_ms":16000,"action":"heal","seed":7448534497973722642},{"at_ms":18000,"action":"start","fault":{"fault":"pause","targets":"one"},"seed":11058308042743048724}]}"#,
    );
}

#[test]
fn kinds_are_named_once() {
    let names: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    assert_eq!(
        names,
        [
            "partition",
            "netem",
            "kill",
            "pause",
            "clock",
            "power",
            "disk-full",
            "disk-error",
            "disk-slow",
            "corrupt"
        ]
    );
    // The kinds a run mounts the lazy filesystem for.
    let lazy: Vec<&str> = Kind::ALL
        .iter()
        .filter(|k| k.on_lazyfs())
        .map(|k| k.name())
        .collect();
    assert_eq!(lazy, ["power", "disk-full", "disk-error", "disk-slow"]);
    for k in Kind::ALL {
        assert_eq!(Kind::from_name(k.name()), Some(*k));
        assert_eq!(serde_json::to_string(k).expect("json"), format!("\"{k}\""));
        assert!(!k.about().is_empty());
    }
    // Every kind has its own plot colour.
    let mut colors: Vec<[u8; 3]> = Kind::ALL.iter().map(|k| k.color()).collect();
    colors.sort();
    colors.dedup();
    assert_eq!(colors.len(), Kind::ALL.len());
    assert!(serde_json::from_str::<Kind>("\"flood\"").is_err());
}
