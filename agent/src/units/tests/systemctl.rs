//! [`RealSystemd`] against a stand-in `systemctl` (a shell script that logs its argv and
//! environment and answers like systemd would), so no test needs a running systemd.

use crate::units::systemctl::wait_within;
use crate::units::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

const STAND_IN: &str = r#"#!/bin/sh
dir=$(dirname "$0")
printf '%s\n' "$@" >> "$dir/args"
echo --- >> "$dir/args"
env > "$dir/env"
verb=$3
shift 3
[ "$1" = "--" ] && shift
case "$verb" in
list-units|list-unit-files) cat "$dir/$verb" ;;
is-active)
    for u in "$@"; do case "$u" in *up*) echo active ;; *) echo inactive ;; esac; done
    exit 3 ;;
is-enabled)
    # As systemd 219: no `not-found` state, it stops at the first unit without a file.
    for u in "$@"; do
        case "$u" in
        missing*) echo "Failed to get unit file state for $u: No such file or directory" >&2
                  exit 1 ;;
        *) echo enabled ;;
        esac
    done ;;
stop) echo "Failed to stop $1: Unit $1 not loaded." >&2; exit 5 ;;
*) ;;
esac
"#;

struct Host {
    dir: tempfile::TempDir,
    sd: RealSystemd,
}

impl Host {
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("systemctl");
        fs::write(&program, STAND_IN).unwrap();
        fs::set_permissions(&program, fs::Permissions::from_mode(0o755)).unwrap();
        let sd = RealSystemd::at(&program);
        Host { dir, sd }
    }

    /// The argv of each run so far.
    fn runs(&self) -> Vec<Vec<String>> {
        let args = fs::read_to_string(self.dir.path().join("args")).unwrap_or_default();
        args.split("---\n")
            .filter(|run| !run.is_empty())
            .map(|run| run.lines().map(str::to_string).collect())
            .collect()
    }
}

/// Runs `f` again while the freshly written stand-in is still "text file busy" (another
/// test thread forked while it was open for writing).
fn retry<T>(mut f: impl FnMut() -> Result<T, UnitsError>) -> Result<T, UnitsError> {
    for _ in 0..100 {
        match f() {
            Err(UnitsError::Spawn { source, .. }) if source.raw_os_error() == Some(26) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
    f()
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

#[test]
fn is_active_asks_once_with_units_after_a_double_dash_and_ignores_the_exit_status() {
    let host = Host::new();
    let units = argv(&["up.service", "-down.service", "up@x.socket"]);
    let states = retry(|| host.sd.is_active(&units)).unwrap();
    let want: BTreeMap<String, bool> = [
        ("-down.service".to_string(), false),
        ("up.service".to_string(), true),
        ("up@x.socket".to_string(), true),
    ]
    .into();
    assert_eq!(states, want);
    let mut expected = argv(&["--no-pager", "--no-ask-password", "is-active", "--"]);
    expected.extend(units);
    assert_eq!(host.runs(), vec![expected]);
}

#[test]
fn systemctl_gets_only_path_and_lang() {
    let host = Host::new();
    retry(|| host.sd.daemon_reload()).unwrap();
    let env = fs::read_to_string(host.dir.path().join("env")).unwrap();
    let vars: Vec<&str> = env.lines().collect();
    assert!(
        vars.contains(&"PATH=/usr/sbin:/usr/bin:/sbin:/bin"),
        "{env}"
    );
    assert!(vars.contains(&"LANG=C"), "{env}");
    // The shell itself may add PWD, SHLVL and `_`; nothing may come from the agent's env.
    let shell_own = ["PATH=", "LANG=", "PWD=", "OLDPWD=", "SHLVL=", "_="];
    let leaked: Vec<&&str> = vars
        .iter()
        .filter(|v| !shell_own.iter().any(|p| v.starts_with(p)))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    assert_eq!(
        host.runs(),
        vec![argv(&["--no-pager", "--no-ask-password", "daemon-reload"])]
    );
}

#[test]
fn state_lists_active_units_and_enabled_unit_files() {
    let host = Host::new();
    fs::write(
        host.dir.path().join("list-units"),
        "containerd.service loaded active running containerd\n\
         dbus.socket loaded active running D-Bus\n",
    )
    .unwrap();
    fs::write(
        host.dir.path().join("list-unit-files"),
        "containerd.service enabled enabled\nfstrim.timer enabled enabled\n",
    )
    .unwrap();
    let state = retry(|| host.sd.state()).unwrap();
    assert_eq!(
        state.active,
        ["containerd.service", "dbus.socket"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        state.enabled,
        ["containerd.service", "fstrim.timer"]
            .map(String::from)
            .into()
    );
    let listing = ["--plain", "--no-legend", "--full"];
    let types = "--type=service,socket,timer,path";
    let common = ["--no-pager", "--no-ask-password"];
    let units = [
        &common[..],
        &["list-units", types, "--state=active"],
        &listing,
    ]
    .concat();
    let files = [
        &common[..],
        &["list-unit-files", types, "--state=enabled"],
        &listing,
    ]
    .concat();
    assert_eq!(host.runs(), vec![argv(&units), argv(&files)]);
}

#[test]
fn is_enabled_falls_back_to_one_unit_at_a_time_on_an_old_systemd() {
    let host = Host::new();
    let units = argv(&["a.service", "missing.service", "b.service"]);
    let states = retry(|| host.sd.is_enabled(&units)).unwrap();
    let want: BTreeMap<String, bool> = [
        ("a.service".to_string(), true),
        ("b.service".to_string(), true),
        ("missing.service".to_string(), false),
    ]
    .into();
    assert_eq!(states, want);
    // All together first, then each one.
    assert_eq!(host.runs().len(), 4);
}

#[test]
fn a_failed_order_carries_the_command_and_stderr() {
    let host = Host::new();
    let err = retry(|| host.sd.stop("x.service")).unwrap_err().to_string();
    assert!(
        err.contains("systemctl --no-pager --no-ask-password stop -- x.service"),
        "{err}"
    );
    assert!(err.contains("Unit x.service not loaded."), "{err}");
}

#[test]
fn nothing_to_ask_about_runs_nothing() {
    let host = Host::new();
    assert!(retry(|| host.sd.is_active(&[])).unwrap().is_empty());
    assert!(retry(|| host.sd.is_enabled(&[])).unwrap().is_empty());
    assert!(host.runs().is_empty());
}

#[test]
fn a_command_past_its_limit_is_killed() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let started = Instant::now();
    let status = wait_within(&mut child, Duration::from_millis(200)).unwrap();
    assert_eq!(status, None);
    assert!(started.elapsed() < Duration::from_secs(5));
    // Reaped: nothing left to wait for.
    assert!(child.try_wait().unwrap().is_some());
}

#[test]
fn a_command_within_its_limit_gives_its_status() {
    let mut child = Command::new("true").spawn().unwrap();
    let status = wait_within(&mut child, Duration::from_secs(10)).unwrap();
    assert!(status.is_some_and(|s| s.success()));
}
