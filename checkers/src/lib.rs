//! faultline's checkers: history types, readers, models and the linearizability checker.
//!
//! This crate is pure: no async, no I/O beyond reading and writing histories.

#![warn(missing_docs)]

#[doc(hidden)]
pub mod brute;
pub mod check;
pub mod error;
pub mod generate;
pub mod history;
pub mod linear;
pub mod model;
pub mod read;
pub mod set_check;
pub mod txn;
pub mod verdict;

pub use verdict::Verdict;
