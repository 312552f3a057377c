//! [`RealSystemd`]: the [`Systemd`] seam answered by running `systemctl`.

use super::{Systemd, UnitState, UnitsError, WATCHED_TYPES, parse};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where `systemctl` may be; looked up by absolute path so a `systemctl` planted earlier in
/// some `PATH` is never the one run.
const CANDIDATES: [&str; 2] = ["/usr/bin/systemctl", "/bin/systemctl"];

/// The only environment `systemctl` gets: `LANG=C` keeps its output ASCII and untranslated.
const ENV: [(&str, &str); 2] = [("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), ("LANG", "C")];

/// Before every verb: no pager and no password agent, so nothing waits on a terminal or
/// outlives `systemctl` holding its pipes.
const COMMON: [&str; 2] = ["--no-pager", "--no-ask-password"];

/// Time limit of questions and quick orders.
const QUICK: Duration = Duration::from_secs(10);
/// `disable` may run `systemd-sysv-install` for units with an init script too.
const DISABLE: Duration = Duration::from_secs(30);
/// Reloading re-runs the generators, which can take a while on a busy host.
const RELOAD: Duration = Duration::from_secs(30);
/// Past systemd's own default stop timeout (90 s), after which it has killed the unit.
const STOP: Duration = Duration::from_secs(100);

/// How often a running `systemctl` is polled.
const POLL: Duration = Duration::from_millis(20);

/// The host's systemd, through `systemctl`.
#[derive(Clone, Debug)]
pub(crate) struct RealSystemd {
    program: PathBuf,
}

/// What one `systemctl` run left behind.
struct Ran {
    command: String,
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// `Ok` only if `systemctl` exited 0.
    fn check(self) -> Result<Ran, UnitsError> {
        if self.status.success() {
            Ok(self)
        } else {
            Err(UnitsError::Failed {
                command: self.command,
                status: self.status.to_string(),
                stderr: self.stderr,
            })
        }
    }
}

impl RealSystemd {
    /// The first `systemctl` of the usual places, if any.
    pub(crate) fn find() -> Option<RealSystemd> {
        CANDIDATES
            .iter()
            .map(Path::new)
            .find(|p| p.is_file())
            .map(RealSystemd::at)
    }

    /// `program` as `systemctl`.
    pub(crate) fn at(program: &Path) -> RealSystemd {
        RealSystemd {
            program: program.to_path_buf(),
        }
    }

    /// Runs `systemctl COMMON args [-- units]`; a non-zero exit is for the caller to judge.
    fn run(&self, args: &[&str], units: &[String], limit: Duration) -> Result<Ran, UnitsError> {
        let mut argv: Vec<&str> = COMMON.to_vec();
        argv.extend_from_slice(args);
        if !units.is_empty() {
            // A unit name may begin with '-' (`-.slice`); it must never be read as an option.
            argv.push("--");
            argv.extend(units.iter().map(String::as_str));
        }
        let command = format!("systemctl {}", argv.join(" "));
        let mut child = Command::new(&self.program)
            .args(&argv)
            .env_clear()
            .envs(ENV)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group, so a timeout also ends what it started (sysv-install).
            .process_group(0)
            .spawn()
            .map_err(|source| UnitsError::Spawn {
                command: command.clone(),
                source,
            })?;
        // Read while it runs: a long listing would fill the pipe and block it forever.
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = match wait_within(&mut child, limit) {
            Ok(Some(status)) => status,
            Ok(None) => {
                return Err(UnitsError::Timeout {
                    command,
                    secs: limit.as_secs(),
                });
            }
            Err(source) => return Err(UnitsError::Spawn { command, source }),
        };
        Ok(Ran {
            command,
            status,
            stdout: collect(stdout),
            stderr: collect(stderr).trim().to_string(),
        })
    }

    /// An order for one unit that must succeed.
    fn order(&self, verb: &str, unit: &str, limit: Duration) -> Result<(), UnitsError> {
        self.run(&[verb], &[unit.to_string()], limit)?
            .check()
            .map(drop)
    }

    /// One `is-active`/`is-enabled` run for all of `units`, mapped by position; the run
    /// itself if it did not print one state per unit.
    fn per_unit(
        &self,
        verb: &str,
        units: &[String],
        yes: fn(&str) -> bool,
    ) -> Result<Result<BTreeMap<String, bool>, Ran>, UnitsError> {
        // Their exit status only says whether any unit is active/enabled, so it is ignored
        // and the printed states are all there is.
        let ran = self.run(&[verb], units, QUICK)?;
        let Some(states) = parse::states(&ran.stdout, units.len()) else {
            return Ok(Err(ran));
        };
        Ok(Ok(units
            .iter()
            .zip(states)
            .map(|(u, s)| (u.clone(), yes(s)))
            .collect()))
    }
}

impl Systemd for RealSystemd {
    fn state(&self) -> Result<UnitState, UnitsError> {
        let types = format!("--type={}", WATCHED_TYPES.join(","));
        let listing = ["--plain", "--no-legend", "--full"];
        let mut args = vec!["list-units", types.as_str(), "--state=active"];
        args.extend(listing);
        let active = self.run(&args, &[], QUICK)?.check()?;
        let mut args = vec!["list-unit-files", types.as_str(), "--state=enabled"];
        args.extend(listing);
        let enabled = self.run(&args, &[], QUICK)?.check()?;
        Ok(UnitState {
            active: parse::active_units(&active.stdout),
            enabled: parse::enabled_units(&enabled.stdout),
        })
    }

    fn is_active(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError> {
        if units.is_empty() {
            return Ok(BTreeMap::new());
        }
        self.per_unit("is-active", units, parse::is_active_state)?
            .map_err(|ran| miscounted(ran, units.len()))
    }

    fn is_enabled(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError> {
        if units.is_empty() {
            return Ok(BTreeMap::new());
        }
        if let Ok(states) = self.per_unit("is-enabled", units, parse::is_enabled_state)? {
            return Ok(states);
        }
        // systemd before 238 has no `not-found` state: it stops at the first unit without a
        // unit file. Asked one by one, such a unit prints nothing and says why on stderr.
        let mut states = BTreeMap::new();
        for unit in units {
            let one = std::slice::from_ref(unit);
            let ran = self.run(&["is-enabled"], one, QUICK)?;
            let enabled = match parse::states(&ran.stdout, 1) {
                Some(s) => parse::is_enabled_state(s[0]),
                None if ran.stderr.contains("No such file or directory") => false,
                None => return Err(miscounted(ran, 1)),
            };
            states.insert(unit.clone(), enabled);
        }
        Ok(states)
    }

    fn stop(&self, unit: &str) -> Result<(), UnitsError> {
        self.order("stop", unit, STOP)
    }

    fn disable(&self, unit: &str) -> Result<(), UnitsError> {
        self.order("disable", unit, DISABLE)
    }

    fn daemon_reload(&self) -> Result<(), UnitsError> {
        self.run(&["daemon-reload"], &[], RELOAD)?.check().map(drop)
    }

    fn reset_failed(&self, unit: &str) -> Result<(), UnitsError> {
        self.order("reset-failed", unit, QUICK)
    }
}

/// The error for a per-unit answer without one state per unit.
fn miscounted(ran: Ran, expected: usize) -> UnitsError {
    let printed = ran.stdout.lines().filter(|l| !l.trim().is_empty()).count();
    UnitsError::Output {
        command: ran.command,
        detail: format!("{printed} states for {expected} units"),
        stderr: ran.stderr,
    }
}

/// Waits for `child` up to `limit`; `None` if it had to be killed.
pub(super) fn wait_within(
    child: &mut Child,
    limit: Duration,
) -> std::io::Result<Option<ExitStatus>> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if started.elapsed() >= limit {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            // In case the group could not be signalled; harmless if it is gone already.
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(POLL);
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> Option<JoinHandle<String>> {
    pipe.map(|mut p| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = p.read_to_end(&mut bytes);
            String::from_utf8_lossy(&bytes).into_owned()
        })
    })
}

fn collect(reader: Option<JoinHandle<String>>) -> String {
    reader.and_then(|r| r.join().ok()).unwrap_or_default()
}
