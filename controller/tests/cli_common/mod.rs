//! Running the `installer` binary in the tests that need no host: a bounded wait, and the
//! output as one text to search.

use assert_cmd::Command;
use std::time::{Duration, Instant};

/// What one run of the binary did.
pub(crate) struct Run {
    /// The exit code (-1 when killed by a signal or the timeout).
    pub code: i32,
    /// stdout then stderr, lossily decoded.
    pub text: String,
    /// How long it took.
    pub took: Duration,
}

/// Runs `cmd` for at most 30 s: every refusal these tests expect comes in well under that,
/// and a run that hangs (reading a FIFO, connecting to an address that never answers)
/// fails instead of stalling the suite.
pub(crate) fn run(mut cmd: Command) -> Run {
    let started = Instant::now();
    #[allow(clippy::unwrap_used)] // tests: a binary that cannot start is the failure report
    let out = cmd.timeout(Duration::from_secs(30)).output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        took: started.elapsed(),
    }
}
