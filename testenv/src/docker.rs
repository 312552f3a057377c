//! A thin wrapper around the `docker` command-line client.
//!
//! The CLI (not the Engine API) is used on purpose: it is what operators have, it honours
//! `DOCKER_HOST` and contexts, and its error messages are the ones people know. Every call
//! captures stdout and stderr; a failure names the command and carries the daemon's message.
//! Values that must stay secret never go into arguments (they would show up in `ps`): pass
//! them on stdin with [`run_with_stdin`].

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::{Command, Stdio};

/// What can go wrong when talking to Docker.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// The `docker` client is not installed.
    #[error(
        "the `docker` command was not found in PATH; testenv needs a Docker engine and its \
         client (Debian: `apt-get install docker.io`)"
    )]
    NotInstalled,
    /// The client exists but the engine does not answer.
    #[error(
        "the Docker engine is not reachable (`docker version` failed: {stderr}); start the \
         daemon or point DOCKER_HOST at one"
    )]
    Unreachable {
        /// What `docker version` printed on stderr.
        stderr: String,
    },
    /// The client could not be started at all.
    #[error("could not run `{command}`: {source}")]
    Spawn {
        /// The command line (arguments only, never secrets).
        command: String,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The command ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line (arguments only, never secrets).
        command: String,
        /// The exit status as text.
        status: String,
        /// What the command printed on stderr (trimmed).
        stderr: String,
    },
}

/// The result of a command run inside a container with `docker exec`.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// The exit code; `None` if the process was killed by a signal.
    pub code: Option<i32>,
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to stderr.
    pub stderr: Vec<u8>,
}

impl ExecOutput {
    /// Whether the command exited with status 0.
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// stdout as text (lossy: invalid UTF-8 becomes U+FFFD).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// stderr as text (lossy: invalid UTF-8 becomes U+FFFD).
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

/// Checks that the client is installed and the engine answers. Returns the engine version.
pub fn check_available() -> Result<String, DockerError> {
    let output = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match output {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(DockerError::NotInstalled),
        Err(source) => Err(DockerError::Spawn {
            command: "docker version".into(),
            source,
        }),
        Ok(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Ok(out) => Err(DockerError::Unreachable {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        }),
    }
}

/// Runs `docker ARGS...` and returns its stdout (trimmed) on success.
pub fn run<I, S>(args: I) -> Result<String, DockerError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = raw(args, None)?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `docker ARGS...` with `stdin` fed to the command, and returns its stdout (trimmed).
pub fn run_with_stdin<I, S>(args: I, stdin: &[u8]) -> Result<String, DockerError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = raw(args, Some(stdin))?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs `docker exec [-i] CONTAINER ARGV...` and returns the command's status and output
/// whatever the status is. Only a failure to run `docker` itself is an error.
pub fn exec(
    container: &str,
    argv: &[&OsStr],
    stdin: Option<&[u8]>,
) -> Result<ExecOutput, DockerError> {
    let mut args: Vec<OsString> = vec!["exec".into()];
    if stdin.is_some() {
        args.push("-i".into());
    }
    args.push(container.into());
    args.extend(argv.iter().map(|a| a.to_os_string()));
    let command = describe(&args);
    let out = spawn_and_wait(&args, stdin, &command)?;
    // docker exec reports its own failures (no such container: 1; cannot execute: 126/127)
    // with statuses a command could also return; the daemon's message tells them apart.
    // Surface those as errors so callers do not mistake them for the command's result.
    if let Some(code @ (1 | 125..=127)) = out.status.code() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if stderr.starts_with("Error response from daemon:")
            || stderr.starts_with("OCI runtime exec failed")
        {
            return Err(DockerError::Failed {
                command,
                status: format!("exit code {code}"),
                stderr,
            });
        }
    }
    Ok(ExecOutput {
        code: out.status.code(),
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Whether an object (image, container, network, volume) exists: `docker <kind> inspect`.
pub fn exists(kind: &str, name: &str) -> Result<bool, DockerError> {
    let out = Command::new("docker")
        .args([kind, "inspect", "--format", "{{.Id}}", name])
        .stdin(Stdio::null())
        .output()
        .map_err(|source| spawn_error(source, &format!("docker {kind} inspect {name}")))?;
    Ok(out.status.success())
}

fn raw<I, S>(args: I, stdin: Option<&[u8]>) -> Result<std::process::Output, DockerError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let command = describe(&args);
    let out = spawn_and_wait(&args, stdin, &command)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(DockerError::Failed {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

fn spawn_and_wait(
    args: &[OsString],
    stdin: Option<&[u8]>,
    command: &str,
) -> Result<std::process::Output, DockerError> {
    tracing::debug!(%command, "docker");
    let mut child = Command::new("docker")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| spawn_error(source, command))?;
    if let Some(data) = stdin
        && let Some(mut pipe) = child.stdin.take()
    {
        // A command that exits without reading all of stdin closes the pipe; that is its
        // business and shows in its status, so a broken pipe here is not an error.
        if let Err(e) = pipe.write_all(data)
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            return Err(DockerError::Spawn {
                command: command.to_owned(),
                source: e,
            });
        }
    }
    child
        .wait_with_output()
        .map_err(|source| spawn_error(source, command))
}

fn spawn_error(source: std::io::Error, command: &str) -> DockerError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DockerError::NotInstalled
    } else {
        DockerError::Spawn {
            command: command.to_owned(),
            source,
        }
    }
}

/// The command line for messages: `docker arg arg ...`, long arguments shortened.
fn describe(args: &[OsString]) -> String {
    let mut s = String::from("docker");
    for a in args {
        let a = a.to_string_lossy();
        s.push(' ');
        if a.chars().count() > 120 {
            s.extend(a.chars().take(117));
            s.push_str("...");
        } else {
            s.push_str(&a);
        }
    }
    s
}
