//! Short commands the agent runs and reads the answer of — the container runtime CLIs that
//! query and remove `sealer-registry` (the `runtime` module). Every such command goes
//! through the [`CommandRunner`] trait, so what the agent asks and how it reads the answers
//! is tested against [`RecordingFake`] without a container runtime on the machine.
//! [`RealRunner`] runs the command.
//!
//! Arguments are visible to every user of the host (`/proc/<pid>/cmdline`), so nothing
//! secret may be part of `argv`; a secret goes in `env`, which only the command's user and
//! root can read.

#[cfg(test)]
mod fake;
mod real;

#[cfg(test)]
pub(crate) use fake::RecordingFake;

pub(crate) use real::RealRunner;

/// What one finished command left behind.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ran {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Its standard output, decoded lossily.
    pub stdout: String,
    /// Its standard error, decoded lossily.
    pub stderr: String,
}

impl Ran {
    /// A run that exited with `code` after printing `stdout` and `stderr`.
    #[cfg(test)]
    pub(crate) fn exited(code: i32, stdout: &str, stderr: &str) -> Ran {
        Ran {
            code: Some(code),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
        }
    }

    /// Whether it exited 0.
    pub(crate) fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A command that could not be run at all.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CommandError {
    /// It could not be started, or its output could not be read.
    #[error("running {command}: {source}")]
    Spawn {
        /// The command line, for the message.
        command: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The seam: runs `argv` (program first) with `env` set on top of the agent's environment,
/// stdin closed, and returns its exit status and output once it has finished.
pub(crate) trait CommandRunner: Send + Sync {
    /// Runs one command to its end.
    fn run(&self, argv: &[String], env: &[(&str, &str)]) -> Result<Ran, CommandError>;
}

/// `argv` as one line, for messages.
pub(crate) fn command_line(argv: &[String]) -> String {
    argv.join(" ")
}
