//! Everything a run shows and keeps: the live view ([`view`]), the per-host logs and the
//! run's NDJSON file ([`logs`]), the event schema ([`event`]) and the final table
//! ([`table`]). Code that does the work only calls [`Reporter::emit`].

pub mod event;
pub mod logs;
pub mod table;
pub mod view;

use event::{HostStatus, RunEvent};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
pub use view::OutputMode;

/// Where runs keep their logs, relative to the working directory.
pub const RUNS_DIR: &str = ".installer/runs";

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
    /// JSON mode), and the exit code is returned (0 all ok, 1 otherwise).
    pub fn finish(&self, unreached_reason: &str) -> i32 {
        let rows: Vec<(String, HostStatus)> =
            {
                let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
                let order = inner.order.clone();
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
                    .collect()
            };
        let ok = rows.iter().all(|(_, s)| s.is_ok());
        let exit_code = if ok { 0 } else { 1 };
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
