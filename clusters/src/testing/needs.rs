//! What the workspace's privileged tests need, and whether this process has it.
//!
//! std only, because two kinds of code compile this file: the build scripts of the crates that
//! hold such tests (through `#[path]`), which mark those tests ignored where a need is missing,
//! and `clusters::testing`, whose guards make such a test fail, never pass, when it runs anyway
//! without what it needs (a build made as another user, or with `CI` set).

use std::path::Path;

/// Something a test needs that an ordinary `cargo test` may not have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Root: network namespaces, sshd, iptables, qemu's tap devices.
    Root,
    /// Headless Chromium at one of [`CHROMIUM`] (scripts/install-deps installs it).
    Chromium,
}

/// Where Chromium is looked for: Debian's package, and the name other distributions use.
pub const CHROMIUM: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

impl Need {
    /// The cfg a build script sets when this need is missing; tests that have the need carry
    /// `#[cfg_attr(<cfg>, ignore = "...")]`.
    pub fn missing_cfg(self) -> &'static str {
        match self {
            Need::Root => "not_root",
            Need::Chromium => "no_chromium",
        }
    }

    /// Whether this process has it now.
    pub fn met(self) -> bool {
        match self {
            Need::Root => euid() == Some(0),
            Need::Chromium => chromium().is_some(),
        }
    }

    /// What is missing, for messages.
    pub fn describe(self) -> String {
        match self {
            Need::Root => format!(
                "root (network namespaces, sshd, iptables), but runs as uid {}",
                euid().map_or_else(|| "unknown".to_string(), |u| u.to_string())
            ),
            Need::Chromium => format!("Chromium, but none is at {}", CHROMIUM.join(" or ")),
        }
    }
}

/// The effective user id of this process, from /proc/self/status (std has no geteuid).
pub fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    // Real, effective, saved set, file system.
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// The Chromium binary, if one is installed.
pub fn chromium() -> Option<&'static str> {
    CHROMIUM.into_iter().find(|p| Path::new(p).exists())
}

/// Whether this build runs under CI (`CI` set, as .ci/run does), where every test must run:
/// no test is marked ignored there, so a missing need fails its tests.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// For a build script: declares the cfgs of `needs`, sets the cfg of each need this build
/// lacks (never under CI), and tells cargo when to decide again: when the user changes (sudo,
/// su and runuser set `USER` and `LOGNAME`), when `CI` changes, and, for Chromium, when
/// /usr/bin gains or loses an entry (no Chromium yet) or the Chromium found changes.
pub fn emit_build_cfgs(needs: &[Need]) {
    for var in ["USER", "LOGNAME", "SUDO_USER", "CI"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let ci = under_ci();
    for &need in needs {
        let cfg = need.missing_cfg();
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if need == Need::Chromium {
            // Installing Chromium adds an entry to /usr/bin; upgrading or removing it changes
            // the binary itself (a missing one makes cargo run this script again).
            println!(
                "cargo::rerun-if-changed={}",
                chromium().unwrap_or("/usr/bin")
            );
        }
        if !need.met() && !ci {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
