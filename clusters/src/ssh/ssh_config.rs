//! The parts of `~/.ssh/config` people rely on: `Host` blocks (with `*`, `?` and `!`
//! patterns), `HostName`, `User`, `Port`, `IdentityFile`, `ProxyJump` and `Include`. As in
//! OpenSSH, the first value found for a keyword wins.

use std::path::{Path, PathBuf};

/// Settings that apply to one host.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSettings {
    /// `HostName`: the real address.
    pub hostname: Option<String>,
    /// `User`.
    pub user: Option<String>,
    /// `Port`.
    pub port: Option<u16>,
    /// `IdentityFile`s, in order.
    pub identity_files: Vec<PathBuf>,
    /// `ProxyJump`.
    pub proxy_jump: Option<String>,
}

fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for pat in patterns {
        if let Some(neg) = pat.strip_prefix('!') {
            if glob_match(neg, host) {
                return false;
            }
        } else if glob_match(pat, host) {
            matched = true;
        }
    }
    matched
}

fn expand_home(p: &str, home: &Path) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => home.join(rest),
        None => PathBuf::from(p),
    }
}

/// Files an `Include` names: relative paths are under ~/.ssh; `*` globs the last component.
fn include_files(arg: &str, home: &Path) -> Vec<PathBuf> {
    let path = expand_home(arg, home);
    let path = if path.is_relative() {
        home.join(".ssh").join(path)
    } else {
        path
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains(['*', '?']) {
        return vec![path];
    }
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| glob_match(&name, &e.file_name().to_string_lossy()))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

fn apply(text: &str, host: &str, home: &Path, out: &mut HostSettings, depth: usize) {
    let mut active = true; // lines before any Host block apply to every host
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim()
                    .trim_start_matches('=')
                    .trim()
                    .trim_matches('"')
                    .to_string(),
            ),
            None => continue,
        };
        match key.as_str() {
            "host" => {
                active = host_matches(
                    &value
                        .split_whitespace()
                        .map(String::from)
                        .collect::<Vec<_>>(),
                    host,
                )
            }
            "match" => active = false, // Match blocks are not supported: skipped.
            _ if !active => {}
            "include" if depth < 8 => {
                for f in value
                    .split_whitespace()
                    .flat_map(|a| include_files(a, home))
                {
                    if let Ok(t) = std::fs::read_to_string(&f) {
                        apply(&t, host, home, out, depth + 1);
                    }
                }
            }
            "hostname" if out.hostname.is_none() => out.hostname = Some(value.replace("%h", host)),
            "user" if out.user.is_none() => out.user = Some(value),
            "port" if out.port.is_none() => out.port = value.parse().ok(),
            "identityfile" => out.identity_files.push(expand_home(&value, home)),
            "proxyjump" if out.proxy_jump.is_none() && value != "none" => {
                out.proxy_jump = Some(value)
            }
            _ => {}
        }
    }
}

/// The settings `config_text` gives `host` (`home` expands `~` and locates Includes).
pub fn settings_for(config_text: &str, host: &str, home: &Path) -> HostSettings {
    let mut out = HostSettings::default();
    apply(config_text, host, home, &mut out, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_blocks_first_match_wins() {
        let dir = std::env::temp_dir().join(format!("faultline-sshcfg-{}", std::process::id()));
        std::fs::create_dir_all(dir.join(".ssh/conf.d")).unwrap();
        std::fs::write(
            dir.join(".ssh/conf.d/lab.conf"),
            "Host n?\n  User lab\n  Port 2200\n",
        )
        .unwrap();
        let text = "Include conf.d/*.conf\nHost n1 !n2\n  HostName 10.0.0.1\n  IdentityFile ~/.ssh/lab_key\nHost *\n  User fallback\n  Port 22\n  ProxyJump bastion\n";
        let s = settings_for(text, "n1", &dir);
        assert_eq!(s.hostname.as_deref(), Some("10.0.0.1"));
        assert_eq!(s.user.as_deref(), Some("lab"));
        assert_eq!(s.port, Some(2200));
        assert_eq!(s.identity_files, vec![dir.join(".ssh/lab_key")]);
        assert_eq!(s.proxy_jump.as_deref(), Some("bastion"));
        let s = settings_for(text, "n2", &dir);
        assert_eq!(s.hostname, None);
        assert_eq!(s.user.as_deref(), Some("lab"));
        let s = settings_for(text, "other", &dir);
        assert_eq!((s.user.as_deref(), s.port), (Some("fallback"), Some(22)));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
