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
