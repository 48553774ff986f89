//! Operations: an invocation paired with its completion, per key, ready for checking.

/// One operation of one key's sub-history, as the checker sees it.
///
/// Positions (`call`, `ret`) are ranks in the history's line order (client events only), so
/// op A precedes op B in real time iff `A.ret < B.call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<O> {
    /// The model's op: argument and, when known, result.
    pub op: O,
    /// Rank of the invocation.
    pub call: u64,
    /// Rank of the completion; `None` when the outcome is unknown (`info`, or no completion):
    /// the op may take effect at any time after `call`, or never.
    pub ret: Option<u64>,
    /// The client process.
    pub process: u64,
    /// `index` of the invoke event in the history (for reports).
    pub invoke_index: u64,
    /// `index` of the completion event, if any.
    pub complete_index: Option<u64>,
}

impl<O> Operation<O> {
    /// True when the op completed `ok` (it must be linearized).
    pub fn is_known(&self) -> bool {
        self.ret.is_some()
    }

    /// The completion rank, with unknown outcomes at infinity.
    pub fn ret_or_max(&self) -> u64 {
        self.ret.unwrap_or(u64::MAX)
    }
}
