//! Everything a run shows and keeps: the live view ([`view`]), the per-host logs and the
//! run's NDJSON file ([`logs`]), the event schema ([`event`]) and the final table
//! ([`table`]). Code that does the work only calls [`Reporter::emit`].

pub(crate) mod describe;
pub(crate) mod event;
pub(crate) mod logs;
pub(crate) mod progress;
pub(crate) mod table;
pub(crate) mod view;

use crate::exit;
use event::{HostStatus, RunEvent};
use installer_proto::event::Event;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
pub(crate) use view::OutputMode;

/// Where runs keep their logs, relative to the working directory.
pub(crate) const RUNS_DIR: &str = ".installer/runs";

/// Collects a run's events: shows them, logs them, and remembers each host's status.
pub struct Reporter {
    run_id: String,
    log_dir: PathBuf,
    inner: Mutex<Inner>,
}

struct Inner {
    view: view::View,
    logs: logs::RunLogs,
    order: Vec<String>,
    statuses: BTreeMap<String, HostStatus>,
    /// Whether anything may have changed on any host: a step ran, files arrived, something
    /// was undone. Decides between "refused" and "failed" when hosts were busy.
    changed: bool,
}

impl Reporter {
    /// Starts a run: creates its log directory under `runs_root`.
    pub fn new(runs_root: &Path, mode: OutputMode, verbose: bool) -> std::io::Result<Reporter> {
        let run_id = logs::new_run_id();
        let logs = logs::RunLogs::create(runs_root, &run_id)?;
        Ok(Reporter {
            log_dir: logs.dir().to_path_buf(),
            run_id,
            inner: Mutex::new(Inner {
                view: view::View::new(mode, verbose),
                logs,
                order: Vec::new(),
                statuses: BTreeMap::new(),
                changed: false,
            }),
        })
    }

    /// The run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// The run's log directory.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// Shows and records one event.
    pub fn emit(&self, event: RunEvent) {
        let ts = logs::now_ms();
        // A poisoned lock only means another thread panicked while printing; keep going.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &event {
            RunEvent::RunStarted { hosts, .. } => inner.order = hosts.clone(),
            RunEvent::HostFinished { host, status } => {
                inner.statuses.insert(host.clone(), status.clone());
            }
            _ => {}
        }
        inner.changed |= changes_a_host(&event);
        inner.logs.record(ts, &event);
        let run_id = self.run_id.clone();
        inner.view.show(&run_id, ts, &event);
    }

    /// A host's status, if it finished.
    pub fn status(&self, host: &str) -> Option<HostStatus> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.statuses.get(host).cloned()
    }

    /// Ends the run: hosts without a status are "not reached", the table is printed (not in
    /// JSON mode), and the exit code is returned: 0 all ok; 3 when hosts refused because
    /// another run holds their lock, every other host is ok, and nothing changed anywhere
    /// (the same command is safe to run again as it is); 1 otherwise.
    pub fn finish(&self, unreached_reason: &str) -> i32 {
        let (rows, changed): (Vec<(String, HostStatus)>, bool) = {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            let order = inner.order.clone();
            let rows =
                order
                    .into_iter()
                    .map(|h| {
                        let status = inner.statuses.get(&h).cloned().unwrap_or_else(|| {
                            HostStatus::NotReached {
                                reason: unreached_reason.to_string(),
                            }
                        });
                        inner.statuses.insert(h.clone(), status.clone());
                        (h, status)
                    })
                    .collect();
            (rows, inner.changed)
        };
        let ok = rows.iter().all(|(_, s)| s.is_ok());
        let exit_code = exit_code(rows.iter().map(|(_, s)| s), changed);
        self.emit(RunEvent::RunFinished {
            ok,
            exit_code,
            log_dir: self.log_dir.display().to_string(),
        });
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.view.finish();
        inner.logs.flush();
        if !matches!(inner.view, view::View::Json) {
            print!("{}", table::render(&rows));
            println!("run {}: logs in {}", self.run_id, self.log_dir.display());
        }
        exit_code
    }
}

/// The run's exit code from its hosts' ends and whether anything changed (see
/// [`Reporter::finish`]).
fn exit_code<'a>(statuses: impl Iterator<Item = &'a HostStatus> + Clone, changed: bool) -> i32 {
    if statuses.clone().all(HostStatus::is_ok) {
        exit::OK
    } else if !changed
        && statuses.clone().any(HostStatus::is_busy)
        && statuses.into_iter().all(|s| s.is_ok() || s.is_busy())
    {
        exit::REFUSED
    } else {
        exit::HOST_FAILED
    }
}

/// Whether an event means something may have changed on a host. A step that started may
/// have changed things even if it failed; files that arrived were written; in a dry run
/// the agent only says what would run, which is none of these.
fn changes_a_host(event: &RunEvent) -> bool {
    match event {
        RunEvent::TransferDone { files, .. } | RunEvent::Fetched { files, .. } => *files > 0,
        RunEvent::Published { pushed, .. } => *pushed > 0,
        RunEvent::Agent { event, .. } => matches!(
            event,
            Event::StepStarted { .. } | Event::Undone { .. } | Event::Received { .. }
        ),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use event::Phase;

    fn ok(ran: u32, files_sent: u64) -> HostStatus {
        HostStatus::Ok {
            ran,
            skipped: 0,
            bytes_sent: 0,
            files_sent,
            not_undone: Vec::new(),
            agent_peak_rss_kib: None,
        }
    }

    fn busy() -> HostStatus {
        HostStatus::Busy {
            phase: Phase::Ship,
            reason: "another installer-agent is running on this host".into(),
        }
    }

    fn failed() -> HostStatus {
        HostStatus::Failed {
            phase: Phase::Steps,
            step: None,
            reason: "x".into(),
        }
    }

    fn run(statuses: &[HostStatus], events: &[RunEvent]) -> i32 {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Reporter::new(dir.path(), OutputMode::Plain, false).unwrap();
        let hosts: Vec<String> = (0..statuses.len()).map(|i| format!("10.0.0.{i}")).collect();
        reporter.emit(RunEvent::RunStarted {
            command: "apply".into(),
            cluster: "c".into(),
            hosts: hosts.clone(),
            dry_run: false,
        });
        for e in events {
            reporter.emit(e.clone());
        }
        for (host, status) in hosts.iter().zip(statuses) {
            reporter.emit(RunEvent::HostFinished {
                host: host.clone(),
                status: status.clone(),
            });
        }
        reporter.finish("not reached")
    }

    #[test]
    fn a_busy_host_is_a_refusal_while_nothing_changed() {
        assert_eq!(run(&[ok(0, 0), ok(0, 0)], &[]), exit::OK);
        // Every host busy, or busy and the others had nothing to do: run it again later.
        assert_eq!(run(&[busy(), busy()], &[]), exit::REFUSED);
        assert_eq!(run(&[busy(), ok(0, 0)], &[]), exit::REFUSED);
        // Another host changed, or failed: the run is a failure like any other.
        let step = RunEvent::Agent {
            host: "10.0.0.1".into(),
            event: Event::StepStarted {
                step: "install-bin".into(),
                kind: installer_proto::plan::StepKind::InstallBin,
                reason: String::new(),
            },
        };
        assert_eq!(run(&[busy(), ok(1, 0)], &[step]), exit::HOST_FAILED);
        let undone = RunEvent::Agent {
            host: "10.0.0.1".into(),
            event: Event::Undone {
                what: "/usr/local/bin/kubectl".into(),
            },
        };
        assert_eq!(run(&[busy(), ok(0, 0)], &[undone]), exit::HOST_FAILED);
        let shipped = RunEvent::TransferDone {
            host: "10.0.0.1".into(),
            files: 3,
            bytes_sent: 10,
            bytes: 30,
        };
        assert_eq!(run(&[busy(), ok(0, 3)], &[shipped]), exit::HOST_FAILED);
        assert_eq!(run(&[busy(), failed()], &[]), exit::HOST_FAILED);
        assert_eq!(run(&[failed()], &[]), exit::HOST_FAILED);
    }

    #[test]
    fn a_host_that_never_finished_is_not_a_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let reporter = Reporter::new(dir.path(), OutputMode::Plain, false).unwrap();
        reporter.emit(RunEvent::RunStarted {
            command: "clean".into(),
            cluster: "c".into(),
            hosts: vec!["a".into(), "b".into()],
            dry_run: false,
        });
        reporter.emit(RunEvent::HostFinished {
            host: "a".into(),
            status: busy(),
        });
        assert_eq!(reporter.finish("not reached"), exit::HOST_FAILED);
    }
}
