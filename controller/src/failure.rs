//! The one error type the binary edge maps to an exit code.

use crate::apply::driver::Refused;
use crate::exit;

/// What `apply`/`clean` return: the exit code of a finished run, or a failure that ended it
/// before any host was reached (bad input, refused host key, ...).
pub type RunResult = Result<i32, Failure>;

/// A run that could not start or was refused; `Display` is the message for the operator.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input: nothing changed on any host (hosts may have been asked for their facts).
    #[error("{0:#}")]
    BadInput(anyhow::Error),
    /// Refused for safety before anything changed.
    #[error("{0:#}")]
    Refused(anyhow::Error),
    /// Anything else that ended the run early.
    #[error("{0:#}")]
    Other(anyhow::Error),
}

impl Failure {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::BadInput(_) => exit::BAD_INPUT,
            Failure::Refused(_) => exit::REFUSED,
            Failure::Other(_) => exit::HOST_FAILED,
        }
    }
}

impl From<Refused> for Failure {
    /// A gate phase refused a host (a host key unknown or changed): the run stopped before
    /// any host was changed.
    fn from(Refused(reasons): Refused) -> Failure {
        Failure::Refused(anyhow::anyhow!(
            "{reasons}\nNothing was changed on any host."
        ))
    }
}
