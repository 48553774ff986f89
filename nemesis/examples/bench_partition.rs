//! How long a partition takes to apply on every node of a 5-node local cluster: 20 random
//! partitions (random halves, majorities ring, bridge, isolate), each applied and healed;
//! prints the median and max of apply and of heal. Needs root (it builds the cluster).
//!
//!   cargo run --release -p nemesis --example bench_partition [-- RUNS]

use clusters::{local, Cluster, ClusterFile};
use nemesis::fault::PartitionSpec;
use nemesis::partition::PartitionFaultSpec;
use nemesis::{seeded, FaultSpec, Journal, Nemesis, Topology};
use std::time::{Duration, Instant};

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "median {:.1} ms, max {:.1} ms, min {:.1} ms",
        ms(v[v.len() / 2]),
        ms(v[v.len() - 1]),
        ms(v[0])
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let name = "bench-part";
    let _ = local::down(name);
    let path = local::up(5, name)?;
    let cluster = Cluster::new(ClusterFile::load(&path)?, 2);
    let dir = std::env::temp_dir().join(format!("faultline-bench-{}", std::process::id()));
    let nem = Nemesis::new(&cluster, Journal::open(&dir.join("nemesis.jsonl"))?);
    nem.addresses()?; // opens the sessions
    let topologies = [
        Topology::RandomHalves,
        Topology::MajoritiesRing,
        Topology::Bridge,
        Topology::IsolateRandom,
    ];
    let mut rng = seeded(1);
    let (mut apply, mut heal) = (Vec::new(), Vec::new());
    for i in 0..runs {
        let spec = FaultSpec::Partition(PartitionFaultSpec {
            partition: PartitionSpec::Topology(topologies[i % topologies.len()].clone()),
        });
        let fault = nem.resolve(&spec, &mut rng)?;
        let t = Instant::now();
        let applied = nem.apply(fault)?;
        apply.push(t.elapsed());
        let t = Instant::now();
        nem.heal(&applied)?;
        heal.push(t.elapsed());
    }
    println!(
        "partition apply on 5 nodes ({runs} runs): {}",
        summary(apply)
    );
    println!(
        "partition heal on 5 nodes ({runs} runs):  {}",
        summary(heal)
    );
    local::down(name)?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}
