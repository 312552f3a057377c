//! The run's files under `.installer/runs/<run-id>/`: one log per host with every event and
//! every line of script output, and `events.ndjson` with the whole run in the `-o json`
//! schema. They are written whatever the terminal shows, so a failed run can always be read
//! afterwards.

use super::event::{Line, RunEvent, SCHEMA_VERSION};
pub use installer_proto::human::bytes as human_bytes;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A run id: UTC date and time plus 4 hex digits of entropy, e.g. `20261124-071501-3f2a`.
pub fn new_run_id() -> String {
    let ms = now_ms();
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    // Entropy from the clock's sub-second part and the pid keeps parallel runs apart.
    let salt = ((ms % 1000) as u32 ^ std::process::id().wrapping_mul(2_654_435_761)) & 0xffff;
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{salt:04x}")
}

/// `HH:MM:SS.mmm` (UTC) for log lines.
pub fn clock(ms: u64) -> String {
    let (_, _, _, h, mi, s) = civil(ms / 1000);
    format!("{h:02}:{mi:02}:{s:02}.{:03}", ms % 1000)
}

/// Converts Unix seconds to a UTC civil date and time (Howard Hinnant's days-from-civil
/// inverse), avoiding a date crate for one formatting need.
fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        ((rem % 3600) / 60) as u32,
        (rem % 60) as u32,
    )
}

/// The log files of one run.
pub struct RunLogs {
    dir: PathBuf,
    run_id: String,
    hosts: HashMap<String, BufWriter<File>>,
    events: BufWriter<File>,
}

impl RunLogs {
    /// Creates `<root>/<run_id>/` and its `events.ndjson`.
    pub fn create(root: &Path, run_id: &str) -> io::Result<RunLogs> {
        let dir = root.join(run_id);
        fs::create_dir_all(&dir)?;
        let events = BufWriter::new(File::create(dir.join("events.ndjson"))?);
        Ok(RunLogs {
            dir,
            run_id: run_id.to_string(),
            hosts: HashMap::new(),
            events,
        })
    }

    /// The run's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records one event in `events.ndjson` and, when it concerns a host, in that host's
    /// log. Logging must not fail a run, so write errors are reported once via tracing.
    pub fn record(&mut self, ts_ms: u64, event: &RunEvent) {
        let line = Line {
            schema: SCHEMA_VERSION,
            ts_ms,
            run_id: &self.run_id,
            event,
        };
        if let Ok(json) = serde_json::to_string(&line) {
            let _ = writeln!(self.events, "{json}");
        }
        if let Some(host) = event.host() {
            let text = describe(event);
            if let Err(e) = self
                .host_log(host)
                .and_then(|f| writeln!(f, "{} {}", clock(ts_ms), text))
            {
                tracing::warn!("writing the log of {host}: {e}");
            }
        }
    }

    /// Flushes everything to disk.
    pub fn flush(&mut self) {
        let _ = self.events.flush();
        for f in self.hosts.values_mut() {
            let _ = f.flush();
        }
    }

    fn host_log(&mut self, host: &str) -> io::Result<&mut BufWriter<File>> {
        if !self.hosts.contains_key(host) {
            // Host names are IPs or DNS names; keep the file name safe anyway.
            let name: String = host
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            let file = File::create(self.dir.join(format!("{name}.log")))?;
            self.hosts.insert(host.to_string(), BufWriter::new(file));
        }
        self.hosts
            .get_mut(host)
            .ok_or_else(|| io::Error::other("log file vanished"))
    }
}

/// One human line for an event (used by the host logs and the plain view).
pub fn describe(event: &RunEvent) -> String {
    match event {
        RunEvent::RunStarted {
            command,
            cluster,
            hosts,
            dry_run,
        } => format!(
            "{command} of cluster {cluster} on {} host(s){}",
            hosts.len(),
            if *dry_run { " (dry run)" } else { "" }
        ),
        RunEvent::PhaseStarted { phase, .. } => format!("{}: started", phase.as_str()),
        RunEvent::Plan {
            files_to_send,
            bytes_to_send,
            files_present,
            ..
        } => format!(
            "plan: send {files_to_send} file(s), {}; {files_present} file(s) already present",
            human_bytes(*bytes_to_send)
        ),
        RunEvent::Transfer {
            bytes_sent,
            bytes_total,
            ..
        } => {
            format!(
                "ship: {} sent of {} to send",
                human_bytes(*bytes_sent),
                human_bytes(*bytes_total)
            )
        }
        RunEvent::TransferDone {
            files,
            bytes_sent,
            bytes,
            ..
        } => format!(
            "ship: done, {files} file(s), {} ({} on the wire)",
            human_bytes(*bytes),
            human_bytes(*bytes_sent)
        ),
        RunEvent::Agent { event, .. } => event.describe(),
        RunEvent::HostFinished { status, .. } => {
            format!("finished: {}", super::table::status_text(status))
        }
        RunEvent::RunFinished {
            ok,
            exit_code,
            log_dir,
        } => {
            format!(
                "run finished: {} (exit code {exit_code}); logs in {log_dir}",
                if *ok { "ok" } else { "failed" }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use installer_proto::event::{Event, Stream};

    #[test]
    fn civil_time_is_right() {
        // 2026-11-24T07:15:01Z
        assert_eq!(civil(1_795_504_501), (2026, 11, 24, 7, 15, 1));
        assert_eq!(civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(clock(1_795_504_501_042), "07:15:01.042");
    }

    #[test]
    fn host_logs_and_events_file_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = RunLogs::create(dir.path(), "r1").unwrap();
        logs.record(
            1_000,
            &RunEvent::Agent {
                host: "10.0.0.2".into(),
                event: Event::Output {
                    step: "init-kube".into(),
                    stream: Stream::Stdout,
                    line: "hello".into(),
                },
            },
        );
        logs.flush();
        let host_log = fs::read_to_string(dir.path().join("r1/10.0.0.2.log")).unwrap();
        assert_eq!(host_log, "00:00:01.000 init-kube | hello\n");
        let events = fs::read_to_string(dir.path().join("r1/events.ndjson")).unwrap();
        assert!(
            events.starts_with(
                r#"{"schema":1,"ts_ms":1000,"run_id":"r1","type":"agent","host":"10.0.0.2""#
            ),
            "{events}"
        );
    }
}
