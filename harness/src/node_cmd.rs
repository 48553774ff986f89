//! `faultline node ...`: what faultline runs on a node after uploading itself there.

use crate::cli::{NodeClockCommand, NodeCommand, NodeLazyfsCommand};
use crate::exit::{bad_input, internal, Exit, Failure};
use nemesis::clock::local;
use std::time::Duration;

/// Runs a node helper command.
pub fn run(cmd: &NodeCommand) -> Result<Exit, Failure> {
    match cmd {
        NodeCommand::Clock(NodeClockCommand::Bump { by_ms }) => {
            local::bump(*by_ms).map_err(internal)?
        }
        NodeCommand::Clock(NodeClockCommand::Strobe {
            delta_ms,
            period_ms,
            duration_ms,
        }) => local::strobe(
            *delta_ms,
            Duration::from_millis(*period_ms),
            Duration::from_millis(*duration_ms),
        )
        .map_err(internal)?,
        NodeCommand::Clock(NodeClockCommand::Reset { to_unix_ns }) => {
            local::set(*to_unix_ns).map_err(internal)?
        }
        NodeCommand::Clock(NodeClockCommand::Sync { server }) => {
            local::sync(server).map_err(internal)?
        }
        NodeCommand::NetemQueue { spec, seed } => {
            let spec: nemesis::NetemSpec = serde_json::from_str(spec).map_err(bad_input)?;
            nemesis::emulator::run(&spec, *seed, || println!("ready")).map_err(internal)?;
        }
        NodeCommand::Lazyfs(cmd) => lazyfs(cmd)?,
    }
    Ok(Exit::Valid)
}

/// `faultline node lazyfs mount|ctl`.
fn lazyfs(cmd: &NodeLazyfsCommand) -> Result<(), Failure> {
    use nemesis::lazyfs;
    match cmd {
        NodeLazyfsCommand::Mount {
            backing,
            mount,
            control,
            seed,
        } => {
            let opts = lazyfs::MountOptions {
                backing: backing.clone(),
                mount: mount.clone(),
                control: control.clone(),
                seed: *seed,
            };
            lazyfs::mount(&opts, || {
                use std::io::Write;
                println!("ready");
                let _ = std::io::stdout().flush();
            })
            .map_err(internal)
        }
        NodeLazyfsCommand::Ctl { control, command } => {
            let command: lazyfs::Command = command
                .parse()
                .map_err(|e: String| bad_input(anyhow::anyhow!(e)))?;
            let status = lazyfs::Control::new(control)
                .send(command)
                .map_err(internal)?;
            println!("{}", serde_json::to_string(&status).map_err(internal)?);
            Ok(())
        }
    }
}
