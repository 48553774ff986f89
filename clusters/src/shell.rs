//! Remote commands built from arguments, each escaped for the remote POSIX shell, so that no
//! argument (a node name, a path, a value) can inject shell syntax.
//!
//! ```
//! use clusters::shell::{quote, RemoteCommand};
//! assert_eq!(quote("plain-word_1.2/x"), "plain-word_1.2/x");
//! assert_eq!(quote("it's $(rm -rf /); ok"), r#"'it'\''s $(rm -rf /); ok'"#);
//! let cmd = RemoteCommand::new("echo").arg("a b").env("K", "v 1").render();
//! assert_eq!(cmd, "env K='v 1' echo 'a b'");
//! ```

/// Quotes one argument for a POSIX shell: unchanged when it holds only safe characters,
/// otherwise single-quoted with each `'` written as `'\''`.
pub fn quote(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if safe {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Whether `name` is a valid environment variable name.
fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A command to run on a node: a program and its arguments, environment, working directory,
/// and whether it needs root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteCommand {
    program: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    cwd: Option<String>,
    sudo: bool,
}

impl RemoteCommand {
    /// A command running `program`.
    pub fn new(program: impl Into<String>) -> RemoteCommand {
        RemoteCommand {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            sudo: false,
        }
    }

    /// A shell script run by `sh -c` (the script itself is passed as one escaped argument).
    pub fn script(script: impl Into<String>) -> RemoteCommand {
        RemoteCommand::new("sh").arg("-c").arg(script)
    }

    /// Adds an argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable (names that are not valid identifiers are dropped).
    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        let k = k.into();
        if valid_env_name(&k) {
            self.env.push((k, v.into()));
        }
        self
    }

    /// Runs in this directory.
    pub fn cwd(mut self, dir: impl Into<String>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Runs as root through sudo (skipped by the session when it is root already).
    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    /// Whether the command asked for root.
    pub fn wants_sudo(&self) -> bool {
        self.sudo
    }

    /// The command line without sudo: `[cd DIR && ]env K=V... PROGRAM ARGS...`, every part
    /// quoted.
    pub fn render(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if !self.env.is_empty() {
            parts.push("env".into());
            for (k, v) in &self.env {
                parts.push(format!("{k}={}", quote(v)));
            }
        }
        parts.push(quote(&self.program));
        parts.extend(self.args.iter().map(|a| quote(a)));
        let line = parts.join(" ");
        match &self.cwd {
            Some(dir) => format!("cd {} && {line}", quote(dir)),
            None => line,
        }
    }

    /// The command line under sudo: the password, if any, is read from standard input (`-S`)
    /// with an empty prompt, never placed on the command line.
    pub fn render_with_sudo(&self) -> String {
        format!("sudo -S -p '' -- sh -c {}", quote(&self.render()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs a rendered command in a real local shell and returns its stdout.
    fn sh(line: &str) -> String {
        let out = Command::new("sh").arg("-c").arg(line).output().expect("sh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn hostile_arguments_arrive_literally() {
        let hostile = [
            "a b",
            "it's",
            "$(touch /tmp/faultline-injected)",
            "`id`",
            "; rm -rf /tmp/x",
            "\"quoted\"",
            "back\\slash",
            "new\nline",
            "$HOME",
            "*",
            "",
            "-n",
        ];
        let cmd = RemoteCommand::new("printf").arg("%s|").args(hostile);
        let out = sh(&cmd.render());
        let expected: String = hostile.iter().map(|h| format!("{h}|")).collect();
        assert_eq!(out, expected);
        assert!(!std::path::Path::new("/tmp/faultline-injected").exists());
        let cmd = RemoteCommand::new("sh")
            .arg("-c")
            .arg("printf %s \"$X\"")
            .env("X", "$(id) 'q'");
        assert_eq!(sh(&cmd.render()), "$(id) 'q'");
        let cmd = RemoteCommand::new("pwd").cwd("/tmp");
        assert_eq!(sh(&cmd.render()).trim(), "/tmp");
        // Under sudo the whole line is one quoted argument of sh -c.
        let cmd = RemoteCommand::new("printf").arg("%s").arg("it's $(x)");
        assert_eq!(sh(&format!("sh -c {}", quote(&cmd.render()))), "it's $(x)");
    }

    #[test]
    fn env_names_are_validated() {
        let cmd = RemoteCommand::new("true")
            .env("BAD;NAME", "x")
            .env("GOOD_1", "y");
        assert_eq!(cmd.render(), "env GOOD_1=y true");
    }
}
