//! Running a script or hook: full env through the process environment (never pasted into
//! shell text), cwd `scripts/`, its own process group so a timeout kills everything it
//! started, output streamed as events and kept in a per-step log.

use crate::sink::Sink;
use installer_proto::env::Env;
use installer_proto::event::{Event, StepError, Stream};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::fs::File;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub mod guard;
pub mod leftover;
mod output;

/// How many output lines a failure carries.
pub const TAIL_LINES: usize = 20;

/// The `PATH` scripts run with: the usual system directories, `/usr/local/bin` (where `bin/`
/// was installed) first.
pub const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One process to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Step id (for events).
    pub step: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Working directory.
    pub cwd: PathBuf,
    /// The full environment (nothing is inherited).
    pub env: Env,
    /// Time limit.
    pub timeout: Duration,
    /// Where the step's output is kept.
    pub log: PathBuf,
}

/// Runs `job` to completion; an `Err` describes a failure (non-zero exit, timeout, spawn
/// failure) with the output's tail. `started` gets the step's process group id as soon as
/// it exists (the caller records it, so a later agent can find what a crash left running).
pub fn run(job: &Job, sink: &dyn Sink, started: &mut dyn FnMut(i32)) -> Result<(), StepError> {
    let fail = |message: String| StepError {
        message,
        exit_code: None,
        tail: Vec::new(),
    };
    let log = File::create(&job.log)
        .map_err(|e| fail(format!("creating step log {}: {e}", job.log.display())))?;
    let log = Arc::new(Mutex::new(log));
    let Some((program, args)) = job.argv.split_first() else {
        return Err(fail("nothing to run".into()));
    };
    let mut cmd = match guard::guard_exe() {
        Some(agent) => {
            let mut c = Command::new(agent);
            c.arg(guard::SUBCOMMAND).arg("--").arg(program).args(args);
            c
        }
        None => {
            let mut c = Command::new(program);
            c.args(args);
            c
        }
    };
    cmd.current_dir(&job.cwd)
        .env_clear()
        .envs(&job.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: on timeout the whole group goes, including what the script started.
        .process_group(0);
    if !job.env.contains_key("PATH") {
        cmd.env("PATH", SCRIPT_PATH);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| fail(format!("starting {}: {e}", job.argv.join(" "))))?;
    let tail = Arc::new(Mutex::new(VecDeque::with_capacity(TAIL_LINES)));
    let (tx, rx) = std::sync::mpsc::channel::<(Stream, String)>();
    let reader = match (child.stdout.take(), child.stderr.take()) {
        (Some(stdout), Some(stderr)) => {
            let (tail, log) = (tail.clone(), log.clone());
            Some(std::thread::spawn(move || {
                output::pump(stdout, stderr, |stream, line| {
                    if let Ok(mut log) = log.lock() {
                        let _ = writeln!(log, "{line}");
                    }
                    if let Ok(mut tail) = tail.lock() {
                        if tail.len() == TAIL_LINES {
                            tail.pop_front();
                        }
                        tail.push_back(line.clone());
                    }
                    tx.send((stream, line)).is_ok()
                })
            }))
        }
        // Both were asked for as pipes above; without them there is simply no output.
        _ => None,
    };
    let deadline = Instant::now() + job.timeout;
    let pid = Pid::from_raw(child.id() as i32);
    started(pid.as_raw());
    let mut timed_out = false;
    let status = loop {
        while let Ok((stream, line)) = rx.try_recv() {
            sink.event(Event::Output {
                step: job.step.clone(),
                stream,
                line,
            });
        }
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(e) => return Err(fail(format!("waiting for {}: {e}", job.argv.join(" ")))),
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = killpg(pid, Signal::SIGKILL);
            break child.wait().ok();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A daemon the script left running may hold the pipes open; stop reading after a
    // moment rather than hang the step on it.
    let drain_until = Instant::now() + Duration::from_secs(2);
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok((stream, line)) => sink.event(Event::Output {
                step: job.step.clone(),
                stream,
                line,
            }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if Instant::now() >= drain_until {
                    break;
                }
            }
        }
    }
    if let Some(handle) = reader.filter(|h| h.is_finished()) {
        let _ = handle.join();
    }
    if timed_out {
        // Whatever of the group is still alive goes too.
        let _ = killpg(pid, Signal::SIGKILL);
    }
    let tail: Vec<String> = tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    // Name a script by its path; any other program by its command line.
    let shell = Path::new(&job.argv[0])
        .file_name()
        .is_some_and(|n| n == "bash" || n == "sh");
    let script = match job.argv.get(1) {
        Some(flag) if shell && flag == "-c" => "plugin hook".to_string(),
        // A script, with or without arguments (init-registry.sh takes three).
        Some(path) if shell => path.clone(),
        _ => job.argv.join(" "),
    };
    if timed_out {
        return Err(StepError {
            message: format!(
                "{script} did not finish within {} s and was killed with its process group; raise --script-timeout if it needs longer",
                job.timeout.as_secs()
            ),
            exit_code: None,
            tail,
        });
    }
    match status {
        Some(s) if s.success() => Ok(()),
        Some(s) => {
            use std::os::unix::process::ExitStatusExt;
            let (message, code) = match (s.code(), s.signal()) {
                (Some(code), _) => (format!("{script} exited with code {code}"), Some(code)),
                (None, Some(sig)) => (format!("{script} was killed by signal {sig}"), None),
                _ => (format!("{script} failed"), None),
            };
            Err(StepError {
                message,
                exit_code: code,
                tail,
            })
        }
        None => Err(StepError {
            message: format!("{script}: lost track of the process"),
            exit_code: None,
            tail,
        }),
    }
}

/// The interpreter for a script: bash when the host has it (sealer's scripts are bash),
/// else sh.
pub fn shell_for(script: &Path) -> Vec<String> {
    let bash = ["/bin/bash", "/usr/bin/bash"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    vec![
        bash.unwrap_or("/bin/sh").to_string(),
        script.display().to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::NullSink;

    fn failing(dir: &std::path::Path, argv: Vec<String>) -> StepError {
        let job = Job {
            step: "s".into(),
            argv,
            cwd: dir.to_path_buf(),
            env: Env::from([("PATH".to_string(), SCRIPT_PATH.to_string())]),
            timeout: Duration::from_secs(30),
            log: dir.join("s.log"),
        };
        run(&job, &NullSink, &mut |_| {}).unwrap_err()
    }

    #[test]
    fn a_failure_names_the_script_with_or_without_arguments_and_a_hook_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("init-registry.sh");
        std::fs::write(&script, "#!/bin/sh\nexit 3\n").unwrap();
        let script = script.display().to_string();
        let sh = |rest: &[&str]| -> Vec<String> {
            std::iter::once("/bin/sh")
                .chain(rest.iter().copied())
                .map(String::from)
                .collect()
        };
        let alone = failing(dir.path(), sh(&[&script]));
        assert_eq!(alone.message, format!("{script} exited with code 3"));
        let with_args = failing(
            dir.path(),
            sh(&[&script, "5000", "/var/lib/registry", "sea.hub"]),
        );
        assert_eq!(with_args.message, format!("{script} exited with code 3"));
        let hook = failing(dir.path(), sh(&["-c", "exit 4"]));
        assert_eq!(hook.message, "plugin hook exited with code 4");
    }
}
