//! Scripts die with their agent. Every step runs under `installer-agent step-guard`, a
//! small parent that leads the step's process group: when the agent that started it goes
//! away (a `kill -9`, a lost SSH session), the guard sees itself re-parented and kills the
//! whole group, itself included — so no script of a dead agent runs on, concurrently with
//! the next apply or clean. (`PR_SET_PDEATHSIG` would need `pre_exec`, which is unsafe
//! code; polling the parent costs nothing measurable.)

use nix::sys::signal::{Signal, killpg, raise};
use nix::unistd::{getpgrp, getppid};
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

/// The hidden subcommand that runs a guard.
pub const SUBCOMMAND: &str = "step-guard";

/// The environment variable that marks every process of a step (see `journal::Running`).
pub const TOKEN_VAR: &str = "INSTALLER_STEP_TOKEN";

/// The executable that can act as a guard: this agent, when it is the agent binary (a test
/// harness or another program embedding the library runs steps unguarded).
pub fn guard_exe() -> Option<std::path::PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let name = exe.file_name()?.to_string_lossy().into_owned();
    name.starts_with("installer-agent").then_some(exe)
}

/// Runs `argv` as the guard's child (same environment, directory, streams and process
/// group) and returns the exit code the guard should end with; a child killed by a signal
/// makes the guard die of the same signal, so the agent reports it as such.
pub fn run(argv: &[String]) -> i32 {
    let Some((program, args)) = argv.split_first() else {
        return 127;
    };
    let parent = getppid();
    let mut child = match Command::new(program).args(args).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("starting {program}: {e}");
            return 127;
        }
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if let Some(sig) = status.signal().and_then(|s| Signal::try_from(s).ok()) {
                    let _ = raise(sig);
                }
                return status.code().unwrap_or(128);
            }
            Ok(None) => {}
            Err(_) => return 128,
        }
        if getppid() != parent {
            // The agent is gone: the group goes, this guard with it.
            let _ = killpg(getpgrp(), Signal::SIGKILL);
            return 137;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
