//! What a dead agent's step may have left running. The guard normally takes the step's
//! process group down with the agent; if anything of it still lives when the next agent
//! starts (the guard itself was killed), it is found here — by process group *and* by the
//! step's token in its environment, so a process that merely reuses the group id is never
//! touched — and killed before the new agent does anything.

use super::guard::TOKEN_VAR;
use crate::journal::Running;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::fs;
use std::time::{Duration, Instant};

/// The live processes of `running`'s step.
pub fn find(running: &Running) -> Vec<i32> {
    let marker = format!("{TOKEN_VAR}={}", running.token);
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| group_of(*pid) == Some(running.pgid))
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == marker.as_bytes()))
        })
        .collect()
}

/// The process group of `pid`, from `/proc/<pid>/stat` (the fields after the command name,
/// which may itself hold spaces and parentheses).
fn group_of(pid: i32) -> Option<i32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    // state ppid pgrp …
    after.split_whitespace().nth(2)?.parse().ok()
}

/// Kills every live process of `running`'s step and waits (up to `wait`) until none is
/// left. Returns how many were killed, or an error naming the survivors.
pub fn kill_all(running: &Running, wait: Duration) -> Result<usize, String> {
    let found = find(running);
    if found.is_empty() {
        return Ok(0);
    }
    for pid in &found {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + wait;
    loop {
        let left = find(running);
        if left.is_empty() {
            return Ok(found.len());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "processes {left:?} of step {} (left by an agent that died) did not die after SIGKILL",
                running.step
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn finds_the_steps_processes_by_group_and_token_and_kills_them() {
        let mut child = Command::new("sleep")
            .arg("30")
            .env(TOKEN_VAR, "t-123")
            .process_group(0)
            .spawn()
            .unwrap();
        let pgid = child.id() as i32;
        let running = Running {
            step: "init-kube".into(),
            pgid,
            token: "t-123".into(),
        };
        // `spawn` returns once the child has begun exec, which is a moment before the
        // kernel fills in the new image's environment: until then /proc shows none.
        let deadline = Instant::now() + Duration::from_secs(5);
        while find(&running).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(find(&running), vec![pgid]);
        let wrong_token = Running {
            token: "other".into(),
            ..running.clone()
        };
        assert!(find(&wrong_token).is_empty());
        // The killed child is a zombie until reaped; reap it from another thread so the
        // wait inside kill_all sees it go.
        let reaper = std::thread::spawn(move || child.wait().unwrap());
        assert_eq!(kill_all(&running, Duration::from_secs(5)).unwrap(), 1);
        assert!(!reaper.join().unwrap().success());
    }
}
