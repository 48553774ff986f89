//! `faultline test`: makes the typed plan from the command line (and `--config` or
//! `--replay`), provisions the cluster, and runs the plan (see [`crate::run`]) once or
//! `--test-count` times, each with the next seed, on one cluster.

use crate::cli::TestArgs;
use crate::exit::{bad_input, Exit, Failure};
use crate::run::cluster::Provisioned;
use workloads::Registry;

/// Runs `faultline test` with the built-in databases and workloads.
pub fn run(args: &TestArgs) -> Result<Exit, Failure> {
    run_with(args, &Registry::builtin())
}

/// Runs `faultline test` with the databases and workloads of `registry`.
pub fn run_with(args: &TestArgs, registry: &Registry) -> Result<Exit, Failure> {
    let resolved = crate::plan::make(args, registry, clock_seed()).map_err(bad_input)?;
    if let Some(r) = &args.replay {
        eprintln!("replaying {} (seed {})", r.display(), resolved.plan.seed);
    }
    // One cluster for every run of a --test-count loop: bringing a local cluster up and down
    // costs more than a short run.
    let cluster = Provisioned::new(&resolved.cluster)?;
    // One controller per cluster: a second test (or a one-off fault) is refused while this
    // one runs, instead of healing this one's live faults and wiping its database.
    let _lease = crate::session::lease::take(&cluster.file)?;
    let power = |exit: Exit| match exit {
        Exit::Weak if !args.strict_power => Exit::Valid,
        e => e,
    };
    if args.test_count <= 1 {
        return crate::run::run_plan(
            resolved,
            registry,
            &cluster.file,
            &args.store,
            args.replay.as_deref(),
        )
        .map(power);
    }
    let mut worst = Exit::Valid;
    let (mut valid, mut weak, mut invalid, mut unknown) = (0, 0, 0, 0);
    for i in 0..args.test_count {
        if crate::run::interrupted() {
            eprintln!("interrupted: no further run");
            break;
        }
        let p = resolved.with_seed(resolved.plan.seed.wrapping_add(i));
        eprintln!(
            "== run {} of {} (seed {})",
            i + 1,
            args.test_count,
            p.plan.seed
        );
        let raw = crate::run::run_plan(p, registry, &cluster.file, &args.store, None)?;
        let exit = power(raw);
        match raw {
            Exit::Valid => valid += 1,
            Exit::Weak => weak += 1,
            Exit::Invalid => invalid += 1,
            _ => unknown += 1,
        }
        if severity(exit) > severity(worst) {
            worst = exit;
        }
        if exit == Exit::Invalid && !args.keep_going {
            eprintln!("stopping at the first invalid run (--keep-going runs them all)");
            break;
        }
    }
    eprintln!("{valid} valid, {weak} valid but weak, {invalid} invalid, {unknown} unknown");
    Ok(worst)
}

/// How bad a run's exit is, for the exit of a `--test-count` loop: invalid, then unknown,
/// then weak (only under `--strict-power`), then valid.
fn severity(e: Exit) -> u8 {
    match e {
        Exit::Valid => 0,
        Exit::Weak => 1,
        Exit::Unknown => 2,
        Exit::Invalid => 3,
        Exit::BadInput | Exit::Internal => 4,
    }
}

/// A seed from the clock, for runs without `--seed`.
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_007)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loops_exit_is_its_worst_run() {
        let worst = |runs: &[Exit]| {
            runs.iter().copied().fold(
                Exit::Valid,
                |w, e| if severity(e) > severity(w) { e } else { w },
            )
        };
        assert_eq!(worst(&[Exit::Valid, Exit::Weak, Exit::Valid]), Exit::Weak);
        assert_eq!(worst(&[Exit::Weak, Exit::Unknown]), Exit::Unknown);
        assert_eq!(
            worst(&[Exit::Unknown, Exit::Invalid, Exit::Weak]),
            Exit::Invalid
        );
    }
}
