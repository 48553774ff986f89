//! rw-register (stub while list-append is built).
use super::report::TxnReport;
use super::{Budget, Consistency, TxnHistory};
/// Checks an rw-register history.
pub fn check(h: &TxnHistory, consistency: Consistency, _budget: &Budget) -> TxnReport {
    TxnReport::new(h, consistency)
}
