//! Why an apply (or a clean, which shares its start: lock, ownership, recovery) could not
//! start or continue. Its own module because apply, clean and crash recovery all return it.

use crate::fsutil;

/// Why an apply could not start or continue.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The plan is not acceptable.
    #[error("the plan is invalid: {0}")]
    Plan(#[from] installer_proto::plan::PlanError),
    /// The lock is held.
    #[error(transparent)]
    Lock(#[from] crate::lock::LockError),
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] crate::journal::JournalError),
    /// Creating the cluster directory failed.
    #[error(transparent)]
    Fs(#[from] fsutil::FsError),
    /// Receiving content failed.
    #[error(transparent)]
    Receive(#[from] crate::receive::ReceiveError),
    /// The cluster directory is not this product's.
    #[error("{0}")]
    Foreign(String),
    /// Another cluster on this host owns files this one would write.
    #[error("{0}")]
    Overlap(String),
    /// What a crashed agent left could not be cleared.
    #[error("{0}")]
    Recover(String),
    /// A request came out of order.
    #[error("{0}")]
    Protocol(String),
}

impl ApplyError {
    /// Whether another apply or clean holds the host lock: a refusal that changed nothing,
    /// told apart from failures (agent exit code 3, `AgentMsg::Busy` on the wire).
    pub fn is_busy(&self) -> bool {
        matches!(self, ApplyError::Lock(crate::lock::LockError::Held { .. }))
    }
}
