//! The run's files under `.installer/runs/<run-id>/`: one log per host with every event and
//! every line of script output, and `events.ndjson` with the whole run in the `-o json`
//! schema. They are written whatever the terminal shows, so a failed run can always be read
//! afterwards.

use super::describe::describe;
use super::event::{Line, RunEvent, SCHEMA_VERSION};
use super::progress::ShipClock;
use installer_proto::term;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A run id: UTC date and time plus 4 hex digits of entropy, e.g. `20261124-071501-3f2a`.
pub(crate) fn new_run_id() -> String {
    let ms = now_ms();
    let (y, mo, d, h, mi, s) = civil(ms / 1000);
    // Entropy from the clock's sub-second part and the pid keeps parallel runs apart.
    let salt = ((ms % 1000) as u32 ^ std::process::id().wrapping_mul(2_654_435_761)) & 0xffff;
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}-{salt:04x}")
}

/// `HH:MM:SS.mmm` (UTC) for log lines.
pub(crate) fn clock(ms: u64) -> String {
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
pub(crate) struct RunLogs {
    dir: PathBuf,
    run_id: String,
    hosts: HashMap<String, BufWriter<File>>,
    events: BufWriter<File>,
    ship: ShipClock,
}

impl RunLogs {
    /// Creates `<root>/<run_id>/` and its `events.ndjson`. Script output can hold secrets
    /// (a token echoed by `kubeadm init`, a password in a failing command line), so the
    /// run's directory is 0700 and its files 0600, created so from the start; a runs
    /// directory an older version left readable is narrowed too.
    pub(crate) fn create(root: &Path, run_id: &str) -> io::Result<RunLogs> {
        private_runs_root(root)?;
        let dir = root.join(run_id);
        match fs::DirBuilder::new().mode(PRIVATE_DIR).create(&dir) {
            Ok(()) => {}
            // The same id again (two runs in one millisecond with colliding salts): the
            // directory is this product's, so it is made private like a new one.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => make_private(&dir)?,
            Err(e) => return Err(e),
        }
        let events = BufWriter::new(private_file(&dir.join("events.ndjson"))?);
        Ok(RunLogs {
            dir,
            run_id: run_id.to_string(),
            hosts: HashMap::new(),
            events,
            ship: ShipClock::default(),
        })
    }

    /// The run's directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// Records one event in `events.ndjson` and, when it concerns a host, in that host's
    /// log. Logging must not fail a run, so write errors are reported once via tracing.
    pub(crate) fn record(&mut self, ts_ms: u64, event: &RunEvent) {
        let line = Line {
            schema: SCHEMA_VERSION,
            ts_ms,
            run_id: &self.run_id,
            event,
        };
        if let Ok(json) = term::json_line(&line) {
            let _ = writeln!(self.events, "{json}");
        }
        let progress = self.ship.observe(ts_ms, event);
        if let Some(host) = event.host() {
            let text = match progress {
                Some(p) => p.to_string(),
                None => describe(event),
            };
            if let Err(e) = self
                .host_log(host)
                .and_then(|f| writeln!(f, "{} {}", clock(ts_ms), text))
            {
                tracing::warn!("writing the log of {host}: {e}");
            }
        }
    }

    /// Flushes everything to disk.
    pub(crate) fn flush(&mut self) {
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
            let file = private_file(&self.dir.join(format!("{name}.log")))?;
            self.hosts.insert(host.to_string(), BufWriter::new(file));
        }
        self.hosts
            .get_mut(host)
            .ok_or_else(|| io::Error::other("log file vanished"))
    }
}

/// Mode of the runs directory and of each run's directory.
const PRIVATE_DIR: u32 = 0o700;
/// Mode of every file in a run's directory.
const PRIVATE_FILE: u32 = 0o600;

/// Creates the runs directory (and missing parents) 0700, or narrows an existing one that
/// holds nothing but runs. Any other directory (`--log-dir .`, `/tmp`) is left as it is:
/// changing its mode could break what else lives there, and each run's own directory is
/// private anyway.
fn private_runs_root(root: &Path) -> io::Result<()> {
    match fs::metadata(root) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(root),
        Err(e) => Err(e),
        Ok(meta) if !meta.is_dir() => Err(io::Error::other(format!(
            "{} is not a directory",
            root.display()
        ))),
        Ok(meta) if meta.permissions().mode() & 0o077 == 0 => Ok(()),
        Ok(_) => {
            if holds_only_runs(root)? {
                make_private(root)
            } else {
                tracing::debug!(
                    "{} holds more than runs; its mode is left, each run directory is 0700",
                    root.display()
                );
                Ok(())
            }
        }
    }
}

/// Whether every entry of `dir` is a run directory (its name a run id).
fn holds_only_runs(dir: &Path) -> io::Result<bool> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_run =
            entry.file_type()?.is_dir() && entry.file_name().to_str().is_some_and(is_run_id);
        if !is_run {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Whether `name` has the shape of [`new_run_id`]'s ids: `YYYYMMDD-HHMMSS-hhhh`.
fn is_run_id(name: &str) -> bool {
    let b = name.as_bytes();
    b.len() == 20
        && b[8] == b'-'
        && b[15] == b'-'
        && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit)
        && b[16..].iter().all(u8::is_ascii_hexdigit)
}

/// Narrows a directory of this product's to 0700.
fn make_private(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR)).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("making {} private (0700): {e}", dir.display()),
        )
    })
}

/// Opens `path` for writing, created 0600. A file that already existed (a reused run id)
/// keeps its inode, so its mode is narrowed through the open handle before anything is
/// written to it.
fn private_file(path: &Path) -> io::Result<File> {
    let file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(PRIVATE_FILE)
        .open(path)?;
    if file.metadata()?.permissions().mode() & 0o777 != PRIVATE_FILE {
        file.set_permissions(fs::Permissions::from_mode(PRIVATE_FILE))?;
    }
    Ok(file)
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

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn output(line: &str) -> RunEvent {
        RunEvent::Agent {
            host: "10.0.0.2".into(),
            event: Event::Output {
                step: "init-kube".into(),
                stream: Stream::Stdout,
                line: line.into(),
            },
        }
    }

    #[test]
    fn run_logs_are_private_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join(".installer/runs");
        let mut logs = RunLogs::create(&root, "20261124-071501-3f2a").unwrap();
        logs.record(1, &output("token: s3cret"));
        logs.flush();
        let run = root.join("20261124-071501-3f2a");
        assert_eq!(mode(&dir.path().join(".installer")), 0o700);
        assert_eq!(mode(&root), 0o700);
        assert_eq!(mode(&run), 0o700);
        assert_eq!(mode(&run.join("events.ndjson")), 0o600);
        assert_eq!(mode(&run.join("10.0.0.2.log")), 0o600);
    }

    #[test]
    fn a_runs_directory_left_readable_is_narrowed_when_reused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("runs");
        // As an older version left it: 0755 with a 0755 run inside.
        let old = root.join("20260101-000000-0001");
        fs::create_dir_all(&old).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
        fs::set_permissions(&old, fs::Permissions::from_mode(0o755)).unwrap();
        RunLogs::create(&root, "20261124-071501-3f2a").unwrap();
        assert_eq!(mode(&root), 0o700);
        // The same run id again: its directory and files are made private too.
        let again = root.join("20261124-071502-0000");
        fs::create_dir(&again).unwrap();
        fs::set_permissions(&again, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(again.join("events.ndjson"), "").unwrap();
        fs::set_permissions(
            again.join("events.ndjson"),
            fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        RunLogs::create(&root, "20261124-071502-0000").unwrap();
        assert_eq!(mode(&again), 0o700);
        assert_eq!(mode(&again.join("events.ndjson")), 0o600);
    }

    #[test]
    fn a_log_directory_that_holds_other_things_keeps_its_mode() {
        // `--log-dir .` or a shared directory: narrowing it could break what else is there;
        // the run's own directory is private anyway.
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Clusterfile"), "").unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        RunLogs::create(dir.path(), "20261124-071501-3f2a").unwrap();
        assert_eq!(mode(dir.path()), 0o755);
        assert_eq!(mode(&dir.path().join("20261124-071501-3f2a")), 0o700);
    }

    #[test]
    fn run_ids_are_recognised() {
        assert!(is_run_id(&new_run_id()));
        assert!(is_run_id("20261124-071501-3f2a"));
        for no in [
            "",
            "Clusterfile",
            "20261124-071501-3f2g",
            "2026112-071501-3f2a0",
        ] {
            assert!(!is_run_id(no), "{no}");
        }
    }

    #[test]
    fn logs_keep_script_output_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut logs = RunLogs::create(dir.path(), "r1").unwrap();
        let line = "\x1b]0;title\x07\x1b[31mred\x1b[0m\u{9b}2J\rover";
        logs.record(1_000, &output(line));
        logs.flush();
        let host_log = fs::read_to_string(dir.path().join("r1/10.0.0.2.log")).unwrap();
        assert_eq!(host_log, format!("00:00:01.000 init-kube | {line}\n"));
        let events = fs::read_to_string(dir.path().join("r1/events.ndjson")).unwrap();
        assert!(
            !events.trim_end().chars().any(char::is_control),
            "{events:?}"
        );
        let event: serde_json::Value = serde_json::from_str(events.trim_end()).unwrap();
        assert_eq!(event["line"], line);
    }

    #[test]
    fn host_logs_show_ship_progress_in_one_unit_with_rate_and_time_left() {
        const MIB: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let mut logs = RunLogs::create(dir.path(), "r1").unwrap();
        let host = "10.0.0.3".to_string();
        logs.record(
            1_000,
            &RunEvent::Plan {
                host: host.clone(),
                files_to_send: 2,
                bytes_to_send: 100 * MIB,
                files_present: 0,
            },
        );
        logs.record(
            3_000,
            &RunEvent::Transfer {
                host: host.clone(),
                bytes_sent: 20 * MIB,
                bytes_total: 100 * MIB,
            },
        );
        logs.flush();
        let host_log = fs::read_to_string(dir.path().join("r1/10.0.0.3.log")).unwrap();
        let last = host_log.lines().last().unwrap();
        assert_eq!(
            last,
            "00:00:03.000 ship: 20.0 MiB of 100.0 MiB (20%), 10.0 MiB/s, 8s left"
        );
    }
}
