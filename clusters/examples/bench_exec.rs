//! Benchmark: 500 small commands spread over 5 local nodes, through faultline's pooled SSH
//! sessions and through one `ssh` process per command, with the same parallelism (10 at a
//! time). Needs root (it builds a local cluster named `bench` and removes it afterwards).
//!
//! `cargo run --release -p clusters --example bench_exec`

use clusters::{local, Cluster, ClusterFile, RemoteCommand};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

const COMMANDS: usize = 500;
const NODES: usize = 5;
const PARALLEL: usize = 10;

/// Runs `job(i)` for i in 0..COMMANDS on PARALLEL threads.
fn parallel(job: impl Fn(usize) + Sync) {
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..PARALLEL {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= COMMANDS {
                    break;
                }
                job(i);
            });
        }
    });
}

fn main() {
    let path = match local::up(NODES, "bench") {
        Ok(p) => p,
        Err(e) => {
            eprintln!("bench_exec: {e}");
            std::process::exit(1);
        }
    };
    let file = ClusterFile::load(&path).expect("cluster file");
    let dir = path.parent().expect("dir").to_path_buf();
    let cluster = Cluster::new(file, PARALLEL.div_ceil(NODES) + 1);
    let failures = AtomicUsize::new(0);

    let t = Instant::now();
    parallel(|i| {
        let node = format!("n{}", i % NODES + 1);
        match cluster.exec(&node, &RemoteCommand::new("true")) {
            Ok(o) if o.success() => {}
            _ => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let pooled = t.elapsed();

    let t = Instant::now();
    parallel(|i| {
        let node = format!("n{}", i % NODES + 1);
        let ok = Command::new("ssh")
            .args(["-F", &dir.join("ssh_config").display().to_string()])
            .args(["-i", &dir.join("id_ed25519").display().to_string()])
            .args([
                "-o",
                &format!("UserKnownHostsFile={}", dir.join("known_hosts").display()),
            ])
            .args(["-o", "BatchMode=yes", &node, "true"])
            .stdin(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            failures.fetch_add(1, Ordering::Relaxed);
        }
    });
    let per_process = t.elapsed();
    let _ = local::down("bench");

    println!("{COMMANDS} commands over {NODES} nodes, {PARALLEL} at a time");
    println!(
        "pooled sessions : {:>8.3} s ({:.0} commands/s)",
        pooled.as_secs_f64(),
        COMMANDS as f64 / pooled.as_secs_f64()
    );
    println!(
        "ssh per command : {:>8.3} s ({:.0} commands/s)",
        per_process.as_secs_f64(),
        COMMANDS as f64 / per_process.as_secs_f64()
    );
    println!(
        "ratio           : {:>8.1}x",
        per_process.as_secs_f64() / pooled.as_secs_f64()
    );
    let f = failures.load(Ordering::Relaxed);
    if f > 0 {
        eprintln!("{f} commands failed");
        std::process::exit(1);
    }
}
