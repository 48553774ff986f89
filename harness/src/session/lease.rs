//! The cluster's lease: one controller at a time ([`nemesis::lease`]).

use crate::exit::{bad_input, internal, nemesis_failure, Failure};
use clusters::ClusterFile;
use nemesis::lease::{Lease, LeaseError};

/// Takes the cluster's lease (one controller per cluster, see [`nemesis::lease`]): refused
/// (exit 254) while another faultline process holds it, naming that process.
pub fn take(file: &ClusterFile) -> Result<Lease, Failure> {
    Lease::acquire(file).map_err(failure)
}

/// The failure a lease error is: held by another process is the user's to resolve (254), a
/// journal or file error is faultline's (255).
pub fn failure(e: LeaseError) -> Failure {
    match e {
        LeaseError::Held { .. } => bad_input(e),
        LeaseError::Journal(e) => nemesis_failure(e),
        LeaseError::Io { .. } => internal(e),
    }
}

/// Takes the cluster's lease for `faultline heal`: the faults of a live test are its own, so
/// heal is refused (exit 254) while another process holds the lease, unless `force`d: then it
/// warns and goes on without the lease (`None`).
pub fn take_for_heal(file: &ClusterFile, force: bool) -> Result<Option<Lease>, Failure> {
    match Lease::acquire(file) {
        Ok(l) => Ok(Some(l)),
        Err(e @ LeaseError::Held { .. }) if force => {
            eprintln!(
                "WARNING: {e}\nhealing its faults anyway (--force); the test records in its history and report that they were healed from outside, when, and by this process"
            );
            Ok(None)
        }
        Err(e @ LeaseError::Held { .. }) => Err(bad_input(anyhow::anyhow!(
            "{e}. Its faults are live; `faultline heal --force` heals them anyway"
        ))),
        Err(e) => Err(failure(e)),
    }
}
