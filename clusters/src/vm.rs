//! The VM provider: N qemu guests on a bridge, each with its own kernel, clock, sshd,
//! hostname and disk, so that clock faults are real.
//!
//! The guest image is built locally from Debian packages (debootstrap, Debian's kernel),
//! offline from anything but the Debian mirror, and cached under
//! `$FAULTLINE_HOME/images/<recipe hash>/` (rebuilt only when the recipe in this file
//! changes): a kernel, an initrd and a qcow2 root filesystem. Guests boot from copy-on-write
//! overlays of it, so `up` is fast after the first build and `down` discards all guest state.
//! Each guest's identity (hostname, address, SSH host key, the controller's key) comes from a
//! small seed disk that `up` writes, applied at boot by a unit of the image; host keys are
//! generated on the controller and pinned in known_hosts, as for the namespace provider.
//!
//! Acceleration: KVM when it works, else TCG (software). On machines whose own KVM is nested
//! and incomplete, guests stall early under KVM; `up` then notices that the first guest never
//! reaches userspace, kills it, remembers TCG in `$FAULTLINE_HOME/images/accel`, and boots it
//! again under TCG from a fresh overlay (the killed qemu may hold its old one's image lock for
//! a while). Until that is known, one `up` at a time decides, under `images/accel.lock`. The
//! guests still have kernels and clocks of their own, which is what the clock nemesis needs.

use crate::local::{
    answers, await_sshd, existing, hosts_file, io_err, is_root, keygen, make_bridge, new_layout,
    pid_alive, read_pid, record_pid, recorded_pid, run, run_quiet, state_dir, state_root, tag,
    validate_name, write, write_cluster_file, Access, Layout, LocalError,
};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Options of a VM cluster.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Memory per guest, MiB.
    pub memory_mib: u32,
}

impl Default for VmOptions {
    fn default() -> Self {
        VmOptions { memory_mib: 384 }
    }
}

/// Debian packages of the guest image. systemd-timesyncd is there (with no server it can
/// reach, it leaves the clock alone) so that guests are like real hosts: clock faults must
/// stop it and heal must start it again. fuse3 is for the nemesis's lazy filesystem (its
/// `fusermount3`; the guest kernel has the fuse module).
const PACKAGES: &str = "linux-image-amd64,systemd-sysv,udev,kmod,openssh-server,iproute2,iptables,procps,e2fsprogs,systemd-timesyncd,fuse3";

/// Applies a guest's identity from its seed disk at boot.
const SEED_SCRIPT: &str = r#"#!/bin/sh
# Applies this guest's identity from its seed disk (label flseed): hostname, address, SSH host
# key and the controller's key. Written by faultline's VM image recipe.
set -e
mkdir -p /run/faultline-seed
mount -o ro LABEL=flseed /run/faultline-seed
S=/run/faultline-seed
hostname "$(cat $S/hostname)"
cat $S/hostname > /etc/hostname
cp $S/hosts /etc/hosts
IF=$(ls /sys/class/net | grep -v '^lo$' | head -n 1)
ip link set lo up
ip link set "$IF" up
ip addr add "$(cat $S/address)" dev "$IF"
rm -f /etc/ssh/ssh_host_*
install -m 600 $S/ssh_host_ed25519_key /etc/ssh/ssh_host_ed25519_key
install -m 644 $S/ssh_host_ed25519_key.pub /etc/ssh/ssh_host_ed25519_key.pub
mkdir -p -m 700 /root/.ssh
install -m 600 $S/authorized_keys /root/.ssh/authorized_keys
"#;

const SEED_UNIT: &str = "[Unit]
Description=faultline guest identity from the seed disk
DefaultDependencies=no
After=local-fs.target systemd-udev-settle.service
Wants=systemd-udev-settle.service
Before=ssh.service network.target

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/faultline-seed
RemainAfterExit=yes

[Install]
WantedBy=multi-user.target
";

const SSHD_CONF: &str = "HostKey /etc/ssh/ssh_host_ed25519_key\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n";

/// The recipe's identity: changes whenever anything that goes into the image changes.
fn recipe_hash() -> String {
    let text = format!("bookworm\n{PACKAGES}\n{SEED_SCRIPT}\n{SEED_UNIT}\n{SSHD_CONF}\nv1");
    let h = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{h:016x}")
}

/// The cached image: (kernel, initrd, root disk).
#[derive(Debug, Clone)]
pub struct Image {
    /// The kernel.
    pub kernel: PathBuf,
    /// The initrd.
    pub initrd: PathBuf,
    /// The base root disk (qcow2).
    pub disk: PathBuf,
}

fn require_vm_tools() -> Result<(), LocalError> {
    for (program, packages) in [
        ("/usr/sbin/debootstrap", "debootstrap"),
        ("/usr/bin/qemu-system-x86_64", "qemu-system-x86"),
        ("/usr/bin/qemu-img", "qemu-utils"),
        ("/usr/sbin/mkfs.ext4", "e2fsprogs"),
        ("/usr/bin/ssh-keygen", "openssh-client"),
    ] {
        let alt = program.replace("/usr/sbin/", "/sbin/");
        if !Path::new(program).exists() && !Path::new(&alt).exists() {
            return Err(LocalError::Missing {
                program: program.to_string(),
                packages: packages.to_string(),
            });
        }
    }
    Ok(())
}

/// Builds the guest image if it is not cached, and returns it. Takes a lock, so that two
/// `up`s do not build it twice.
pub fn image() -> Result<Image, LocalError> {
    let root = images_dir();
    std::fs::create_dir_all(&root).map_err(io_err(&root))?;
    let dir = root.join(recipe_hash());
    let img = Image {
        kernel: dir.join("vmlinuz"),
        initrd: dir.join("initrd.img"),
        disk: dir.join("base.qcow2"),
    };
    let lock_path = root.join("build.lock");
    let lock = std::fs::File::create(&lock_path).map_err(io_err(&lock_path))?;
    lock.lock().map_err(io_err(&lock_path))?;
    if img.disk.exists() {
        return Ok(img);
    }
    let tmp = root.join(format!("{}.tmp", recipe_hash()));
    let _ = std::fs::remove_dir_all(&tmp);
    let rootfs = tmp.join("rootfs");
    std::fs::create_dir_all(&tmp).map_err(io_err(&tmp))?;
    let mirror = std::env::var("FAULTLINE_DEBIAN_MIRROR")
        .unwrap_or_else(|_| "http://deb.debian.org/debian".into());
    tracing::info!("building the guest image (debootstrap from {mirror}; once per recipe)");
    let include = format!("--include={PACKAGES}");
    let rootfs_s = rootfs.display().to_string();
    run(
        "debootstrap",
        &[
            "--variant=minbase",
            &include,
            "bookworm",
            &rootfs_s,
            &mirror,
        ],
    )?;
    let put = |rel: &str, text: &str, mode: u32| -> Result<(), LocalError> {
        use std::os::unix::fs::PermissionsExt;
        let p = rootfs.join(rel);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).map_err(io_err(d))?;
        }
        write(&p, text)?;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).map_err(io_err(&p))
    };
    put("usr/local/sbin/faultline-seed", SEED_SCRIPT, 0o755)?;
    put(
        "etc/systemd/system/faultline-seed.service",
        SEED_UNIT,
        0o644,
    )?;
    put("etc/ssh/sshd_config.d/faultline.conf", SSHD_CONF, 0o644)?;
    put("etc/fstab", "/dev/vda / ext4 rw,relatime 0 1\n", 0o644)?;
    let wants = rootfs.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).map_err(io_err(&wants))?;
    let link = wants.join("faultline-seed.service");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink("/etc/systemd/system/faultline-seed.service", &link)
        .map_err(io_err(&link))?;
    // No host keys in the image (each guest gets its own), no package cache.
    for entry in std::fs::read_dir(rootfs.join("etc/ssh")).map_err(io_err(&rootfs))? {
        let p = entry.map_err(io_err(&rootfs))?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("ssh_host_"))
        {
            std::fs::remove_file(&p).map_err(io_err(&p))?;
        }
    }
    run_quiet(
        "sh",
        &[
            "-c",
            &format!("rm -rf {rootfs_s}/var/cache/apt/archives/*.deb"),
        ],
    );
    let boot = rootfs.join("boot");
    for (prefix, dest) in [("vmlinuz-", "vmlinuz"), ("initrd.img-", "initrd.img")] {
        let found = std::fs::read_dir(&boot)
            .map_err(io_err(&boot))?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
            })
            .ok_or_else(|| LocalError::Command {
                command: "guest image".into(),
                message: format!("no {prefix}* in {}", boot.display()),
            })?;
        std::fs::copy(&found, tmp.join(dest)).map_err(io_err(&found))?;
    }
    let raw = tmp.join("base.raw").display().to_string();
    run(
        "mkfs.ext4",
        &["-q", "-F", "-L", "flroot", "-d", &rootfs_s, &raw, "2G"],
    )?;
    let qcow = tmp.join("base.qcow2").display().to_string();
    run("qemu-img", &["convert", "-O", "qcow2", &raw, &qcow])?;
    let _ = std::fs::remove_file(&raw);
    let _ = std::fs::remove_dir_all(&rootfs);
    write(&tmp.join("recipe"), &format!("packages: {PACKAGES}\n"))?;
    std::fs::rename(&tmp, &dir).map_err(io_err(&dir))?;
    Ok(img)
}

/// Where guest images are cached: `$FAULTLINE_IMAGES`, else `$FAULTLINE_HOME/images`.
pub fn images_dir() -> PathBuf {
    std::env::var_os("FAULTLINE_IMAGES").map_or_else(|| state_root().join("images"), PathBuf::from)
}

/// The accelerator that the user chose (`FAULTLINE_VM_ACCEL`: kvm or tcg) or that an earlier
/// `up` fell back to (`images/accel`), if any.
fn known_accel() -> Option<String> {
    if let Ok(a) = std::env::var("FAULTLINE_VM_ACCEL") {
        return Some(a);
    }
    std::fs::read_to_string(images_dir().join("accel"))
        .ok()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
}

/// Remembers that guests stall under KVM on this machine, for every later `up`.
fn remember_tcg() {
    let _ = std::fs::write(images_dir().join("accel"), "tcg\n");
}

fn tap(layout: &Layout, i: usize) -> String {
    format!("flt{}n{i}", tag(&layout.name))
}

fn launch(
    layout: &Layout,
    img: &Image,
    i: usize,
    opts: &VmOptions,
    accel: &str,
) -> Result<(), LocalError> {
    let nd = layout.node_dir(i);
    let s = |p: PathBuf| p.display().to_string();
    let mac = format!("52:54:00:fa:{:02x}:{:02x}", layout.subnet, i);
    let mut args: Vec<String> = vec![
        "-name".into(),
        format!("faultline-{}-n{i}", layout.name),
        "-m".into(),
        opts.memory_mib.to_string(),
        "-smp".into(),
        "1".into(),
        "-display".into(),
        "none".into(),
        "-kernel".into(),
        s(img.kernel.clone()),
        "-initrd".into(),
        s(img.initrd.clone()),
        "-append".into(),
        "root=/dev/vda rw console=ttyS0 nokaslr".into(),
        "-drive".into(),
        format!("file={},if=virtio,format=qcow2", s(nd.join("disk.qcow2"))),
        "-drive".into(),
        format!(
            "file={},if=virtio,format=raw,readonly=on",
            s(nd.join("seed.raw"))
        ),
        "-netdev".into(),
        format!(
            "tap,id=n0,ifname={},script=no,downscript=no",
            tap(layout, i)
        ),
        "-device".into(),
        format!("virtio-net-pci,netdev=n0,mac={mac}"),
        "-serial".into(),
        format!("file:{}", s(nd.join("console.log"))),
        "-daemonize".into(),
        "-pidfile".into(),
        s(nd.join("qemu.pid")),
    ];
    if accel == "kvm" {
        args.splice(
            0..0,
            ["-enable-kvm".to_string(), "-cpu".into(), "host".into()],
        );
    } else {
        args.splice(0..0, ["-accel".to_string(), "tcg".into()]);
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run("qemu-system-x86_64", &refs)?;
    // qemu wrote its daemon's PID; record its identity beside it for `down`.
    let pid = read_pid(&nd.join("qemu.pid")).ok_or_else(|| LocalError::Command {
        command: "qemu-system-x86_64 -daemonize".into(),
        message: format!("no PID in {}", nd.join("qemu.pid").display()),
    })?;
    record_pid(&nd, "qemu", pid, &nd.display().to_string())
}

/// Kills guest `i`'s qemu (only while its recorded PID is still that qemu) and waits for it
/// to be gone. A qemu stuck in KVM can take seconds to die, so the wait is long, and a
/// relaunch uses a fresh overlay anyway ([`overlay`]) rather than the old one's lock.
fn stop_guest(layout: &Layout, i: usize) {
    let dir = layout.node_dir(i);
    // Only while the PID is still the qemu that `up` started (see `local::recorded_pid`).
    if let Some(pid) = recorded_pid(&dir, "qemu", &dir.display().to_string()) {
        // SAFETY: a PID we recorded for our own qemu, verified just now.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        let deadline = Instant::now() + Duration::from_secs(30);
        while pid_alive(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Makes guest `i`'s copy-on-write disk afresh over the image's. The old file, if any, is
/// unlinked first: a qemu that still holds it (and its image lock) keeps the old inode, so
/// the new guest never waits for it.
fn overlay(layout: &Layout, img: &Image, i: usize) -> Result<(), LocalError> {
    let path = layout.node_dir(i).join("disk.qcow2");
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&path)(e)),
    }
    let overlay = path.display().to_string();
    let disk = img.disk.display().to_string();
    run(
        "qemu-img",
        &[
            "create", "-q", "-f", "qcow2", "-b", &disk, "-F", "qcow2", &overlay,
        ],
    )
    .map(drop)
}

/// Launches guest 1 and settles which accelerator every guest of this cluster uses: the
/// known one, else KVM when /dev/kvm is there and guest 1 reaches userspace under it within
/// 45 s, else TCG (remembered). While no accelerator is known, one `up` at a time decides
/// (a lock beside the images), so that concurrent first `up`s on a new machine do not each
/// stall under KVM and race to fall back.
fn start_first_guest(layout: &Layout, img: &Image, opts: &VmOptions) -> Result<String, LocalError> {
    let _deciding = match known_accel() {
        Some(_) => None,
        None => {
            let path = images_dir().join("accel.lock");
            let lock = std::fs::File::create(&path).map_err(io_err(&path))?;
            lock.lock().map_err(io_err(&path))?;
            Some(lock)
        }
    };
    let accel = known_accel().unwrap_or_else(|| {
        if Path::new("/dev/kvm").exists() {
            "kvm".into()
        } else {
            "tcg".into()
        }
    });
    if accel != "kvm" {
        launch(layout, img, 1, opts, &accel)?;
        return Ok(accel);
    }
    if launch(layout, img, 1, opts, "kvm").is_ok() {
        // Nested, incomplete KVM stalls guests before userspace: fall back to TCG.
        let deadline = Instant::now() + Duration::from_secs(45);
        while !reached_userspace(layout, 1) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        if reached_userspace(layout, 1) {
            return Ok(accel);
        }
        tracing::warn!("guests stall under KVM on this machine; using TCG (software emulation)");
        stop_guest(layout, 1);
    } else {
        tracing::warn!("qemu does not start under KVM here; using TCG (software emulation)");
    }
    remember_tcg();
    overlay(layout, img, 1)?;
    let console = layout.node_dir(1).join("console.log");
    let _ = std::fs::remove_file(&console);
    launch(layout, img, 1, opts, "tcg")?;
    Ok("tcg".into())
}

/// Whether guest `i` got past early boot (its console shows the init system).
fn reached_userspace(layout: &Layout, i: usize) -> bool {
    std::fs::read_to_string(layout.node_dir(i).join("console.log"))
        .map(|c| c.contains("systemd") || c.contains("login:"))
        .unwrap_or(false)
}

/// Brings up `n` guests named n1..nN as cluster `name` and returns its cluster file's path.
/// Idempotent: a cluster that is up and answering is left as it is.
pub fn up(n: usize, name: &str, opts: &VmOptions) -> Result<PathBuf, LocalError> {
    validate_name(name)?;
    if !is_root() {
        return Err(LocalError::NotRoot);
    }
    require_vm_tools()?;
    if !(1..=20).contains(&n) {
        return Err(LocalError::Command {
            command: "cluster up --vm".into(),
            message: format!("--local {n}: expected between 1 and 20 guests"),
        });
    }
    if let Some(layout) = existing(name) {
        let vm = layout.dir.join("vm").exists();
        let healthy =
            vm && (1..=n).all(|i| {
                let dir = layout.node_dir(i);
                recorded_pid(&dir, "qemu", &dir.display().to_string()).is_some()
                    && answers(layout.addr(i))
            }) && !layout.node_dir(n + 1).exists();
        if healthy {
            return Ok(layout.cluster_file());
        }
        crate::local::down(name)?;
    }
    let img = image()?;
    let layout = new_layout(name, n, &[("vm", "qemu\n")])?;
    let result = build(&layout, &img, n, opts);
    if result.is_err() {
        let _ = down(name);
    }
    result
}

fn build(layout: &Layout, img: &Image, n: usize, opts: &VmOptions) -> Result<PathBuf, LocalError> {
    let dir = &layout.dir;
    let key = dir.join("id_ed25519");
    let controller_pub = keygen(&key, "faultline-controller")?;
    make_bridge(layout)?;
    let hosts = hosts_file(layout, n);
    let mut access = Access::new("faultline cluster up --local N --vm");
    for i in 1..=n {
        let nd = layout.node_dir(i);
        let seed = nd.join("seed");
        std::fs::create_dir_all(&seed).map_err(io_err(&seed))?;
        let addr = layout.addr(i);
        write(&seed.join("hostname"), &format!("n{i}\n"))?;
        write(&seed.join("address"), &format!("{addr}/24\n"))?;
        write(&seed.join("hosts"), &hosts)?;
        write(&seed.join("authorized_keys"), &controller_pub)?;
        let host_pub = keygen(&seed.join("ssh_host_ed25519_key"), &format!("n{i}"))?;
        access.add(i, addr, &host_pub);
        let seed_s = seed.display().to_string();
        let raw = nd.join("seed.raw").display().to_string();
        run(
            "mkfs.ext4",
            &["-q", "-F", "-L", "flseed", "-d", &seed_s, &raw, "8M"],
        )?;
        overlay(layout, img, i)?;
        let t = tap(layout, i);
        run("ip", &["tuntap", "add", "dev", &t, "mode", "tap"])?;
        run("ip", &["link", "set", &t, "master", &layout.bridge, "up"])?;
    }
    access.write(layout)?;

    let accel = start_first_guest(layout, img, opts)?;
    for i in 2..=n {
        launch(layout, img, i, opts, &accel)?;
    }
    write(&dir.join("accel"), &format!("{accel}\n"))?;
    let secs = if accel == "kvm" { 120 } else { 300 };
    await_sshd(layout, n, secs, Duration::from_millis(200), |i| {
        layout.node_dir(i).join("console.log")
    })?;
    write_cluster_file(layout, n, key)
}

/// Removes everything `up` made for VM cluster `name`: the qemu processes (by the PIDs
/// recorded), taps, the bridge, overlays and seeds. Idempotent.
pub fn down(name: &str) -> Result<(), LocalError> {
    let Some(layout) = existing(name) else {
        let dir = state_dir(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io_err(&dir))?;
        }
        return Ok(());
    };
    let nodes = std::fs::read_dir(layout.dir.join("nodes"))
        .map(|rd| rd.count())
        .unwrap_or(0);
    for i in 1..=nodes.max(1) {
        stop_guest(&layout, i);
        run_quiet("ip", &["link", "del", &tap(&layout, i)]);
    }
    run_quiet("ip", &["link", "del", &layout.bridge]);
    std::fs::remove_dir_all(&layout.dir).map_err(io_err(&layout.dir))?;
    Ok(())
}
