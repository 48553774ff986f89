//! End-to-end tests on real local clusters (network namespaces, real sshd, real SSH):
//! exec, timeouts, transfer, host keys, unreachable nodes, escaping, and a clean `down`.
//! They need root: built without it, they are listed as ignored (CI runs them as root).

use clusters::local;
use clusters::testing::require_root;
use clusters::{Cluster, ClusterFile, RemoteCommand, SshError};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// These tests compare machine-wide state (namespaces, links): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn sh(cmd: &str) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn up(name: &str, n: usize) -> (ClusterFile, std::path::PathBuf) {
    let _ = local::down(name);
    let path = local::up(n, name).expect("cluster up");
    (ClusterFile::load(&path).expect("cluster file"), path)
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd)"
)]
fn exec_transfer_timeouts_and_escaping() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let (file, _) = up("t-exec", 3);
    let cluster = Cluster::new(file, 2);

    // Each node answers with its own hostname, and sees only its own processes.
    let results = cluster.exec_all(&RemoteCommand::new("hostname"));
    let names: Vec<String> = results
        .iter()
        .map(|r| {
            r.result
                .as_ref()
                .expect("exec")
                .stdout_text()
                .trim()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["n1", "n2", "n3"]);
    let ps = cluster
        .exec(
            "n1",
            &RemoteCommand::new("ps").args(["-e", "-o", "pid=,comm="]),
        )
        .expect("ps");
    let first = ps
        .stdout_text()
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    assert_eq!(
        first,
        "1 sshd",
        "sshd is init of the node's PID namespace: {}",
        ps.stdout_text()
    );

    // Exit status and stderr come back.
    let out = cluster
        .exec("n2", &RemoteCommand::script("echo oops >&2; exit 3"))
        .expect("exec");
    assert_eq!((out.status, out.stderr_text().trim()), (3, "oops"));

    // Hostile arguments arrive literally; nothing is injected.
    let hostile = [
        "a b",
        "it's",
        "$(touch /tmp/injected)",
        "`id`",
        "; echo no",
        "\"q\"",
        "back\\slash",
        "$HOME",
        "*",
        "",
    ];
    let out = cluster
        .exec("n3", &RemoteCommand::new("printf").arg("%s|").args(hostile))
        .expect("printf");
    let expected: String = hostile.iter().map(|h| format!("{h}|")).collect();
    assert_eq!(out.stdout_text(), expected);
    let check = cluster
        .exec("n3", &RemoteCommand::new("ls").arg("/tmp"))
        .expect("ls");
    assert!(!check.stdout_text().contains("injected"));

    // A command past its timeout is reported and killed on the node.
    let start = Instant::now();
    let r = cluster.exec_timeout(
        "n1",
        &RemoteCommand::script("sleep 300; echo late"),
        Duration::from_secs(1),
    );
    assert!(matches!(r, Err(SshError::Timeout { .. })), "{r:?}");
    assert!(start.elapsed() < Duration::from_secs(20));
    let ps = cluster
        .exec("n1", &RemoteCommand::new("ps").args(["-e", "-o", "comm="]))
        .expect("ps");
    assert!(
        !ps.stdout_text().lines().any(|l| l.trim() == "sleep"),
        "the timed-out command still runs: {}",
        ps.stdout_text()
    );

    // Output past the limit is read to its end and dropped, and counted: a command that
    // writes without end (`cat /dev/zero`) cannot fill this machine's memory.
    let out = cluster
        .exec_limited(
            "n1",
            &RemoteCommand::script("head -c 20000000 /dev/zero; echo done >&2"),
            Duration::from_secs(60),
            1 << 20,
        )
        .expect("exec");
    assert_eq!(out.stdout.len(), 1 << 20);
    assert_eq!(out.stdout_dropped, 20_000_000 - (1 << 20));
    assert_eq!(
        (out.stderr_text().as_str(), out.stderr_dropped),
        ("done\n", 0)
    );
    assert!(out.truncated() && out.success());
    let out = cluster
        .exec_limited(
            "n1",
            &RemoteCommand::script("cat /dev/zero"),
            Duration::from_secs(2),
            1 << 20,
        )
        .map(|o| o.stdout.len());
    assert!(matches!(out, Err(SshError::Timeout { .. })), "{out:?}");

    // Upload and download of a directory, with awkward names.
    let local_dir = std::env::temp_dir().join(format!("faultline-up-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&local_dir);
    std::fs::create_dir_all(local_dir.join("sub dir")).expect("mkdir");
    std::fs::write(local_dir.join("it's a file.txt"), "hello\n").expect("write");
    std::fs::write(local_dir.join("sub dir/data.bin"), vec![7u8; 100_000]).expect("write");
    cluster
        .upload("n2", &local_dir, Path::new("/tmp/upload test"))
        .expect("upload");
    let out = cluster
        .exec(
            "n2",
            &RemoteCommand::new("cat").arg("/tmp/upload test/it's a file.txt"),
        )
        .expect("cat");
    assert_eq!(out.stdout_text(), "hello\n");
    let back = local_dir.with_extension("back");
    let _ = std::fs::remove_dir_all(&back);
    cluster
        .download("n2", Path::new("/tmp/upload test"), &back)
        .expect("download");
    assert_eq!(
        std::fs::read(back.join("sub dir/data.bin")).expect("read"),
        vec![7u8; 100_000]
    );
    // Private /tmp: n1 does not see n2's upload.
    let out = cluster
        .exec("n1", &RemoteCommand::new("ls").arg("/tmp"))
        .expect("ls");
    assert!(!out.stdout_text().contains("upload"));
    let _ = std::fs::remove_dir_all(&local_dir);
    let _ = std::fs::remove_dir_all(&back);

    // As root, sudo is skipped and the command still runs as root.
    let out = cluster
        .exec("n1", &RemoteCommand::new("id").arg("-u").sudo())
        .expect("id");
    assert_eq!(out.stdout_text().trim(), "0");

    local::down("t-exec").expect("down");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd)"
)]
fn host_keys_are_checked_and_unreachable_nodes_reported() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let (file, path) = up("t-keys", 2);
    let dir = path.parent().expect("dir").to_path_buf();
    let known = std::fs::read_to_string(dir.join("known_hosts")).expect("known_hosts");

    // Swap the two nodes' keys: a mismatch, refused with the fingerprint.
    let lines: Vec<&str> = known.lines().collect();
    let key = |l: &str| {
        l.split_once(' ')
            .map(|(_, k)| k.to_string())
            .unwrap_or_default()
    };
    let addr = |l: &str| {
        l.split_once(' ')
            .map(|(a, _)| a.to_string())
            .unwrap_or_default()
    };
    let swapped = format!(
        "{} {}\n{} {}\n",
        addr(lines[0]),
        key(lines[1]),
        addr(lines[1]),
        key(lines[0])
    );
    let bad_known = dir.join("known_hosts.swapped");
    std::fs::write(&bad_known, swapped).expect("write");
    let mut f = file.clone();
    f.ssh.known_hosts = Some(bad_known);
    let r = Cluster::new(f, 1).exec("n1", &RemoteCommand::new("true"));
    let e = r.expect_err("mismatch must be refused").to_string();
    assert!(
        e.contains("HOST KEY MISMATCH") && e.contains("SHA256:"),
        "{e}"
    );

    // A key marked @revoked is refused, even though a plain line accepts it (OpenSSH does the
    // same); the other node, whose key is not revoked, is still reached.
    let revoked = dir.join("known_hosts.revoked");
    std::fs::write(
        &revoked,
        format!("{known}@revoked * {} stolen\n", key(lines[0])),
    )
    .expect("write");
    // known_hosts lists the nodes in order: lines[0] is n1's key.
    let mut f = file.clone();
    f.ssh.known_hosts = Some(revoked);
    let cluster = Cluster::new(f, 1);
    let e = cluster
        .exec("n1", &RemoteCommand::new("true"))
        .expect_err("a revoked key must be refused")
        .to_string();
    assert!(e.contains("@revoked") && e.contains("SHA256:"), "{e}");
    assert!(cluster
        .exec("n2", &RemoteCommand::new("true"))
        .expect("a key not revoked is accepted")
        .success());

    // Unknown host: refused, with the exact way to accept it.
    let empty = dir.join("known_hosts.empty");
    std::fs::write(&empty, "").expect("write");
    let mut f = file.clone();
    f.ssh.known_hosts = Some(empty);
    let e = Cluster::new(f, 1)
        .exec("n2", &RemoteCommand::new("true"))
        .expect_err("unknown host")
        .to_string();
    assert!(
        e.contains("unknown host key SHA256:") && e.contains("ssh-keyscan -p 22"),
        "{e}"
    );

    // With checking disabled explicitly, it connects.
    let mut f = file.clone();
    f.ssh.known_hosts = Some(dir.join("known_hosts.empty"));
    f.ssh.strict_host_key_checking = false;
    assert!(Cluster::new(f, 1)
        .exec("n2", &RemoteCommand::new("true"))
        .expect("connect")
        .success());

    // A node that does not exist (an unused address of this cluster's own bridge subnet) is
    // reported within about connect_timeout (three tries with backoff).
    let ssh_config = std::fs::read_to_string(dir.join("ssh_config")).expect("ssh_config");
    let n1_addr = ssh_config
        .lines()
        .find_map(|l| l.trim().strip_prefix("HostName "))
        .expect("address")
        .to_string();
    let ghost = format!("{}.99", n1_addr.rsplit_once('.').expect("ipv4").0);
    let mut f = file.clone();
    f.nodes = vec![ghost.clone()];
    f.ssh.connect_timeout = Duration::from_secs(1);
    let start = Instant::now();
    let e = Cluster::new(f, 1)
        .exec(&ghost, &RemoteCommand::new("true"))
        .expect_err("unreachable");
    assert!(matches!(e, SshError::Connect { .. }), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "took {:?}",
        start.elapsed()
    );

    local::down("t-keys").expect("down");
}

#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd)"
)]
fn down_restores_namespaces_links_and_processes() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let _ = local::down("t-clean");
    let netns_before = sh("ip netns list");
    let links_before = sh("ip -o link show | cut -d: -f2");
    let path = local::up(3, "t-clean").expect("up");
    // Idempotent: a second `up` keeps the running cluster.
    assert_eq!(local::up(3, "t-clean").expect("up again"), path);
    let dir = path.parent().expect("dir").to_path_buf();
    let pids: Vec<i32> = (1..=3)
        .flat_map(|i| ["init.pid", "unshare.pid"].map(|f| dir.join(format!("nodes/n{i}/{f}"))))
        .filter_map(|p| std::fs::read_to_string(p).ok()?.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 6);
    assert_ne!(sh("ip netns list"), netns_before);
    local::down("t-clean").expect("down");
    local::down("t-clean").expect("down is idempotent");
    assert_eq!(sh("ip netns list"), netns_before);
    assert_eq!(sh("ip -o link show | cut -d: -f2"), links_before);
    for pid in pids {
        // Gone, or a zombie that this machine's PID 1 has yet to reap (its parent, the node's
        // `unshare`, was killed with it): either way nothing of the node runs.
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "process {pid} survived down: {state}"
        );
    }
    assert!(!dir.exists());
}

/// `down` signals a recorded PID only while it is still the process `up` started. Here the
/// recorded PIDs of two namespace inits are made to name unrelated processes, as PID reuse
/// (or a reboot) would: on n1 its identity file no longer matches, on n2 (a state directory
/// from before identities were recorded) its command line does not name the node. Neither
/// unrelated process is killed; the processes that are still the cluster's are.
#[test]
#[cfg_attr(not_root, ignore = "needs root: network namespaces, sshd")]
fn down_signals_only_the_processes_it_started() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let (_, path) = up("t-reuse", 2);
    let dir = path.parent().expect("dir").to_path_buf();
    let pid_of = |node: &str, f: &str| -> i32 {
        std::fs::read_to_string(dir.join(format!("nodes/{node}/{f}.pid")))
            .expect("pid file")
            .trim()
            .parse()
            .expect("pid")
    };
    let real_inits = [pid_of("n1", "init"), pid_of("n2", "init")];
    let unshares = [pid_of("n1", "unshare"), pid_of("n2", "unshare")];
    let mut strangers: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new("sleep")
                .arg("300")
                .spawn()
                .expect("sleep")
        })
        .collect();
    std::fs::write(
        dir.join("nodes/n1/init.pid"),
        format!("{}\n", strangers[0].id()),
    )
    .expect("write");
    for f in ["init.id", "unshare.id"] {
        let _ = std::fs::remove_file(dir.join("nodes/n2").join(f));
    }
    std::fs::write(
        dir.join("nodes/n2/init.pid"),
        format!("{}\n", strangers[1].id()),
    )
    .expect("write");

    local::down("t-reuse").expect("down");
    let alive: Vec<bool> = strangers
        .iter_mut()
        // Reaped by `down`'s waitpid, or exited: either is dead.
        .map(|c| matches!(c.try_wait(), Ok(None)))
        .collect();
    // Clean up what the test diverted: the real inits it hid from `down`, and the strangers.
    for pid in real_inits {
        // SAFETY: the namespace inits this test's `up` started.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    for c in &mut strangers {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_eq!(
        alive,
        [true, true],
        "down killed a process it did not start"
    );
    for pid in unshares {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(
            state.is_empty() || state.contains(") Z"),
            "the cluster's own process {pid} survived down: {state}"
        );
    }
}

/// Uploads used to write into whatever file was at the target: a file an unprivileged user
/// pre-created (mode 666) kept its owner, so that user came to own a binary root runs, and a
/// link there redirected the write. `install::install_file` replaces the target with a new
/// root-owned file, never follows a link there, and refuses a directory others can write.
#[test]
#[cfg_attr(
    not_root,
    ignore = "needs root: local clusters (network namespaces, sshd)"
)]
fn installs_replace_what_others_made_and_refuse_open_directories() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    require_root();
    let (file, _) = up("t-install", 1);
    let cluster = Cluster::new(file, 1);
    // Local nodes share this machine's file system outside /tmp, /run and /root.
    let home = clusters::testing::home();
    let dir = home.path().join("bin");
    let open = home.path().join("open");
    let victim = home.path().join("victim");
    let local_file = home.path().join("payload");
    std::fs::write(&local_file, b"#!/bin/sh\necho payload\n").unwrap();
    std::fs::write(&victim, b"keep").unwrap();
    let d = dir.display();
    sh(&format!(
        "mkdir -m 755 {d} && touch {d}/prog && chown nobody {d}/prog && chmod 666 {d}/prog \
         && ln -s {} {d}/link && mkdir -m 1777 {}",
        victim.display(),
        open.display()
    ));
    assert!(sh(&format!("stat -c %U:%a {d}/prog")).starts_with("nobody:666"));

    // A file someone else made is replaced by root's, with the mode asked for.
    let prog = format!("{d}/prog");
    clusters::install::install_file(&cluster, "n1", &local_file, &prog, 0o755).expect("install");
    assert_eq!(sh(&format!("stat -c %U:%a {prog}")).trim(), "root:755");
    assert_eq!(
        std::fs::read(&prog).unwrap(),
        std::fs::read(&local_file).unwrap()
    );

    // A link at the target is replaced, not followed.
    let link = format!("{d}/link");
    clusters::install::install_file(&cluster, "n1", &local_file, &link, 0o644).expect("install");
    assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    assert!(!std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());

    // A directory others can write is refused, and nothing is left there.
    let target = format!("{}/prog", open.display());
    let e = clusters::install::install_file(&cluster, "n1", &local_file, &target, 0o755)
        .expect_err("an open directory is refused");
    assert!(e.to_string().contains("writable by others"), "{e}");
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
    // The private upload directories are gone (the node's /tmp is its own).
    let left = cluster
        .exec(
            "n1",
            &RemoteCommand::script("ls -d /tmp/faultline-upload.* 2>/dev/null | wc -l"),
        )
        .expect("ls");
    assert_eq!(left.stdout_text().trim(), "0");
    local::down("t-install").expect("down");
}
