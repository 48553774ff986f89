//! Sequential command latency on one local node (diagnostics): `cargo run --release -p clusters --example latency`
use clusters::{local, Cluster, ClusterFile, RemoteCommand};
use std::time::{Duration, Instant};
fn main() {
    let path = local::up(1, "lat").expect("up");
    let c = Cluster::new(ClusterFile::load(&path).expect("file"), 1);
    let _ = c.exec("n1", &RemoteCommand::new("true"));
    let mut times = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let _ = c.exec_timeout("n1", &RemoteCommand::new("true"), Duration::from_secs(10));
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "min {:?} median {:?} max {:?}",
        times[0], times[15], times[29]
    );
    let _ = local::down("lat");
}
