//! [`RecordingFake`]: a [`CommandRunner`] that runs nothing, answers what the test scripted
//! and remembers every call.

use super::{CommandError, CommandRunner, Ran, command_line};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

/// One call made through the seam.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Invocation {
    /// The command line, program first.
    pub argv: Vec<String>,
    /// The environment it was given.
    pub env: Vec<(String, String)>,
}

/// Scripted answers for one exact command line.
#[derive(Debug)]
struct Script {
    argv: Vec<String>,
    /// Given in order; the last one stays for every later call.
    answers: VecDeque<Option<Ran>>,
}

/// A runner whose commands answer as scripted. A command line without a script exits 127
/// ("not found"), as it would on a host without that program.
#[derive(Debug, Default)]
pub(crate) struct RecordingFake {
    scripts: Mutex<Vec<Script>>,
    calls: Mutex<Vec<Invocation>>,
}

/// A poisoned lock only means another test thread panicked; the data is still what it was.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RecordingFake {
    /// A runner with nothing scripted.
    pub(crate) fn new() -> RecordingFake {
        RecordingFake::default()
    }

    /// `argv` answers `ran` (after the answers scripted for it before, each used once).
    pub(crate) fn answer(&self, argv: &[&str], ran: Ran) {
        self.push(argv, Some(ran));
    }

    /// `argv` cannot be started (after the answers scripted for it before).
    pub(crate) fn spawn_fails(&self, argv: &[&str]) {
        self.push(argv, None);
    }

    fn push(&self, argv: &[&str], answer: Option<Ran>) {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        let mut scripts = lock(&self.scripts);
        match scripts.iter_mut().find(|s| s.argv == argv) {
            Some(s) => s.answers.push_back(answer),
            None => scripts.push(Script {
                argv,
                answers: VecDeque::from([answer]),
            }),
        }
    }

    /// Every call so far, in order.
    pub(crate) fn calls(&self) -> Vec<Invocation> {
        lock(&self.calls).clone()
    }

    /// The command lines of every call so far, in order.
    pub(crate) fn argvs(&self) -> Vec<Vec<String>> {
        self.calls().into_iter().map(|c| c.argv).collect()
    }
}

impl CommandRunner for RecordingFake {
    fn run(&self, argv: &[String], env: &[(&str, &str)]) -> Result<Ran, CommandError> {
        lock(&self.calls).push(Invocation {
            argv: argv.to_vec(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        let mut scripts = lock(&self.scripts);
        let answer = match scripts.iter_mut().find(|s| s.argv == argv) {
            Some(s) if s.answers.len() > 1 => s.answers.pop_front().flatten(),
            Some(s) => s.answers.front().cloned().flatten(),
            None => Some(Ran::exited(127, "", "not scripted")),
        };
        answer.ok_or_else(|| CommandError::Spawn {
            command: command_line(argv),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "told to fail"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(fake: &RecordingFake, argv: &[&str]) -> Option<Ran> {
        let argv: Vec<String> = argv.iter().map(|a| a.to_string()).collect();
        fake.run(&argv, &[("K", "v")]).ok()
    }

    #[test]
    fn answers_come_in_order_and_the_last_one_stays() {
        let fake = RecordingFake::new();
        fake.answer(&["rt", "rm"], Ran::exited(1, "", "busy"));
        fake.answer(&["rt", "rm"], Ran::exited(0, "gone", ""));
        assert_eq!(run(&fake, &["rt", "rm"]), Some(Ran::exited(1, "", "busy")));
        assert_eq!(run(&fake, &["rt", "rm"]), Some(Ran::exited(0, "gone", "")));
        assert_eq!(run(&fake, &["rt", "rm"]), Some(Ran::exited(0, "gone", "")));
        assert_eq!(run(&fake, &["rt", "ls"]).map(|r| r.code), Some(Some(127)));
        fake.spawn_fails(&["rt", "ps"]);
        assert_eq!(run(&fake, &["rt", "ps"]), None);
        let calls = fake.calls();
        assert_eq!(calls.len(), 5);
        assert_eq!(calls[0].env, vec![("K".to_string(), "v".to_string())]);
        assert_eq!(fake.argvs()[3], vec!["rt".to_string(), "ls".to_string()]);
    }
}
