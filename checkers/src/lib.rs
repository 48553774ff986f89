//! faultline's checkers: history types, readers, models and the linearizability checker.
//!
//! This crate is pure: no async, no I/O beyond reading and writing histories.

#[doc(hidden)]
pub mod brute;
pub mod error;
pub mod generate;
pub mod history;
pub mod linear;
pub mod model;
pub mod read;
