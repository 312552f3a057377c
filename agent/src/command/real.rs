//! [`RealRunner`]: the [`CommandRunner`] seam answered by running the command.

use super::{CommandError, CommandRunner, Ran, command_line};
use std::process::{Command, Stdio};

/// Runs commands on this machine.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RealRunner;

impl CommandRunner for RealRunner {
    fn run(&self, argv: &[String], env: &[(&str, &str)]) -> Result<Ran, CommandError> {
        let spawn = |source| CommandError::Spawn {
            command: command_line(argv),
            source,
        };
        let Some((program, args)) = argv.split_first() else {
            return Err(spawn(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "empty command line",
            )));
        };
        let out = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .map_err(spawn)?;
        Ok(Ran {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn output_status_and_env_reach_the_caller() {
        let ran = RealRunner
            .run(
                &argv(&["/bin/sh", "-c", "echo out $X; echo err >&2; exit 3"]),
                &[("X", "from-env")],
            )
            .unwrap();
        assert_eq!(ran, Ran::exited(3, "out from-env\n", "err\n"));
        assert!(!ran.success());
    }

    #[test]
    fn a_missing_program_is_an_error_naming_the_command() {
        let err = RealRunner
            .run(&argv(&["/nonexistent/docker", "inspect"]), &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("running /nonexistent/docker inspect: "),
            "{err}"
        );
        assert!(RealRunner.run(&[], &[]).is_err());
    }
}
