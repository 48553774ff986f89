//! `faultline exec`: one command on many nodes, in parallel, output grouped per node.

use crate::cli::ExecArgs;
use crate::exit::{bad_input, Exit, Failure};
use clusters::{Cluster, ClusterFile, Output, RemoteCommand};
use std::io::{IsTerminal, Write};

/// What a node's output lost to `--max-output`, if anything.
fn cut_note(o: &Output, limit: usize) -> Option<String> {
    let stream = |name: &str, kept: usize, dropped: u64| {
        (dropped > 0).then(|| format!("{name}: first {kept} of {} bytes", kept as u64 + dropped))
    };
    let parts: Vec<String> = [
        stream("stdout", o.stdout.len(), o.stdout_dropped),
        stream("stderr", o.stderr.len(), o.stderr_dropped),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!parts.is_empty()).then(|| {
        format!(
            "output cut at {limit} bytes per stream ({}); --max-output keeps more",
            parts.join(", ")
        )
    })
}

/// Runs `faultline exec`.
pub fn run(args: &ExecArgs) -> Result<Exit, Failure> {
    let file = ClusterFile::load(&args.cluster).map_err(bad_input)?;
    let nodes = if args.nodes.is_empty() {
        file.nodes.clone()
    } else {
        for n in &args.nodes {
            if !file.nodes.contains(n) {
                return Err(bad_input(anyhow::anyhow!(
                    "--node {n}: not a node of {} (nodes: {})",
                    args.cluster.display(),
                    file.nodes.join(", ")
                )));
            }
        }
        args.nodes.clone()
    };
    let (program, rest) = args
        .command
        .split_first()
        .ok_or_else(|| bad_input(anyhow::anyhow!("no command given after --")))?;
    let mut cmd = RemoteCommand::new(program.clone()).args(rest.iter().cloned());
    if args.sudo {
        cmd = cmd.sudo();
    }
    let timeout = args.timeout.unwrap_or(file.ssh.command_timeout);
    let cluster = Cluster::new(file, 1);
    let limit = args.max_output;
    let results = cluster.on_nodes(&nodes, |n| cluster.exec_limited(n, &cmd, timeout, limit));

    let color = std::io::stdout().is_terminal();
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut failed = Vec::new();
    let mut out = std::io::stdout().lock();
    for r in &results {
        let (status, ok) = match &r.result {
            Ok(o) if o.success() => ("exit 0".to_string(), true),
            Ok(o) => (format!("exit {}", o.status), false),
            Err(e) => (format!("error: {e}"), false),
        };
        let header = format!("== {} ({status})", r.node);
        let _ = writeln!(out, "{}", paint(if ok { "1;32" } else { "1;31" }, &header));
        if let Ok(o) = &r.result {
            let _ = out.write_all(&o.stdout);
            if !o.stdout.is_empty() && !o.stdout.ends_with(b"\n") {
                let _ = writeln!(out);
            }
            for line in o.stderr_text().lines() {
                let _ = writeln!(out, "{}", paint("33", &format!("stderr: {line}")));
            }
            if let Some(note) = cut_note(o, limit) {
                let _ = writeln!(out, "{}", paint("1;33", &note));
            }
        }
        if !ok {
            failed.push(format!("{} ({status})", r.node));
        }
    }
    let _ = out.flush();
    if failed.is_empty() {
        Ok(Exit::Valid)
    } else {
        eprintln!(
            "failed on {} of {} nodes: {}",
            failed.len(),
            results.len(),
            failed.join(", ")
        );
        Ok(Exit::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_output_is_announced() {
        let o = Output {
            status: 0,
            stdout: vec![0; 10],
            stderr: b"x".to_vec(),
            stdout_dropped: 90,
            stderr_dropped: 0,
        };
        assert_eq!(
            cut_note(&o, 10).as_deref(),
            Some("output cut at 10 bytes per stream (stdout: first 10 of 100 bytes); --max-output keeps more")
        );
        let whole = Output {
            stdout_dropped: 0,
            ..o
        };
        assert_eq!(cut_note(&whole, 10), None);
    }
}
