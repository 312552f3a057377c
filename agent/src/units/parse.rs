//! Reading what `systemctl` prints. The listing parsers are lenient about the decorations a
//! given systemd version may add (the state marker when `--plain` is not honoured, blank
//! lines, a legend) because a unit missed there is merely not tracked; the per-unit answers
//! are strict because they are mapped to units by position.

use super::WATCHED_TYPES;
use std::collections::BTreeSet;

/// The marker `list-units` puts before a failed or not-found unit: `●` in a UTF-8 locale,
/// `*` in ours (`LANG=C`).
const MARKERS: [&str; 2] = ["●", "*"];

/// Unit names from `systemctl list-units ... --state=active`: UNIT LOAD ACTIVE SUB [JOB]
/// DESCRIPTION per line.
pub(crate) fn active_units(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace().peekable();
            if cols.peek().is_some_and(|c| MARKERS.contains(c)) {
                cols.next();
            }
            let unit = cols.next()?;
            let _load = cols.next()?;
            let active = cols.next()?;
            (active == "active" && watched(unit)).then(|| unit.to_string())
        })
        .collect()
}

/// Unit file names from `systemctl list-unit-files ... --state=enabled`: UNIT-FILE STATE
/// [PRESET] per line (PRESET since systemd 245).
pub(crate) fn enabled_units(out: &str) -> BTreeSet<String> {
    out.lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let unit = cols.next()?;
            let state = cols.next()?;
            (state == "enabled" && watched(unit)).then(|| unit.to_string())
        })
        .collect()
}

/// The per-unit states `systemctl is-active`/`is-enabled` printed, one per unit asked
/// about and in the same order, or `None` if there are not exactly `expected` of them.
/// Indented lines are not states (`is-enabled --full` prints the symlinks that way).
pub(crate) fn states(out: &str, expected: usize) -> Option<Vec<&str>> {
    let states: Vec<&str> = out
        .lines()
        .filter(|line| !line.trim().is_empty() && !line.starts_with([' ', '\t']))
        .map(str::trim)
        .collect();
    (states.len() == expected).then_some(states)
}

/// Whether an `is-active` state counts as running: the states `systemctl is-active` itself
/// exits 0 for, and the transitions. A unit still `deactivating` after a clean that was
/// killed mid-stop must be stopped (and waited for) by the next clean, and one
/// `activating` (restarting) is still running as far as clean is concerned.
pub(crate) fn is_active_state(state: &str) -> bool {
    matches!(
        state,
        "active" | "reloading" | "refreshing" | "activating" | "deactivating"
    )
}

/// Whether an `is-enabled` state counts as enabled: only what `list-unit-files
/// --state=enabled` reports, plus its `--runtime` twin. `static`, `alias`, `indirect` and
/// `generated` make `is-enabled` exit 0 too, but a unit recorded as enabled by a step that
/// is now merely `static` has lost what the step did.
pub(crate) fn is_enabled_state(state: &str) -> bool {
    matches!(state, "enabled" | "enabled-runtime")
}

fn watched(unit: &str) -> bool {
    unit.rsplit_once('.')
        .is_some_and(|(name, kind)| !name.is_empty() && WATCHED_TYPES.contains(&kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(units: &[&str]) -> BTreeSet<String> {
        units.iter().map(|u| u.to_string()).collect()
    }

    /// `systemctl list-units --type=service,socket,timer,path --state=active --plain
    /// --no-legend --full` on a Debian 12 host.
    const LIST_UNITS_PLAIN: &str = "\
containerd.service                          loaded active running containerd container runtime
cron.service                                loaded active running Regular background program processing daemon
getty@tty1.service                          loaded active running Getty on tty1
systemd-fsck@dev-disk-by\\x2duuid-1A2B\\x2d3C4D.service loaded active exited File System Check on /dev/disk/by-uuid/1A2B-3C4D
dbus.socket                                 loaded active running D-Bus System Message Bus Socket
apt-daily.timer                             loaded active waiting Daily apt download activities
systemd-ask-password-wall.path              loaded active waiting Forward Password Requests to Wall Directory Watch
";

    #[test]
    fn list_units_gives_every_active_unit_with_instances_and_escapes() {
        assert_eq!(
            active_units(LIST_UNITS_PLAIN),
            set(&[
                "apt-daily.timer",
                "containerd.service",
                "cron.service",
                "dbus.socket",
                "getty@tty1.service",
                "systemd-ask-password-wall.path",
                "systemd-fsck@dev-disk-by\\x2duuid-1A2B\\x2d3C4D.service",
            ])
        );
    }

    #[test]
    fn list_units_skips_markers_blank_lines_legend_and_other_states() {
        // Without --plain (or from a systemd that ignores it): a glyph column, a marker on
        // units that are not loaded or failed, and the legend if --no-legend were missing.
        let out = "  UNIT                  LOAD      ACTIVE SUB     DESCRIPTION
\u{25cf} kubelet.service       loaded    active running kubelet
* ghost.service         not-found active exited  ghost.service

  sshd.service          loaded    active running OpenSSH Daemon
\u{25cf} broken.service        loaded    failed failed  Broken
  -.mount               loaded    active mounted Root Mount
  session-3.scope       loaded    active running Session 3

LOAD   = Reflects whether the unit definition was properly loaded.
6 loaded units listed.
";
        assert_eq!(
            active_units(out),
            set(&["ghost.service", "kubelet.service", "sshd.service"])
        );
    }

    #[test]
    fn list_units_of_nothing_is_empty() {
        assert!(active_units("").is_empty());
        assert!(active_units("\n\n").is_empty());
    }

    #[test]
    fn list_unit_files_with_and_without_the_preset_column() {
        // systemd >= 245 prints a PRESET column; CentOS 7's 219 does not.
        let out = "\
containerd.service                 enabled enabled
getty@.service                     enabled enabled

sshd.service                       enabled
docker.socket                      enabled disabled
fstrim.timer                       enabled enabled
systemd-networkd.service           disabled enabled
remote-fs.target                   enabled enabled
UNIT FILE                          STATE   PRESET
5 unit files listed.
";
        assert_eq!(
            enabled_units(out),
            set(&[
                "containerd.service",
                "docker.socket",
                "fstrim.timer",
                "getty@.service",
                "sshd.service",
            ])
        );
    }

    #[test]
    fn per_unit_states_keep_their_order_and_skip_blank_and_indented_lines() {
        let out = "active\ninactive\n\nfailed\n";
        assert_eq!(states(out, 3), Some(vec!["active", "inactive", "failed"]));
        let enabled_full =
            "enabled\n  /etc/systemd/system/multi-user.target.wants/a.service\ndisabled\n";
        assert_eq!(states(enabled_full, 2), Some(vec!["enabled", "disabled"]));
    }

    #[test]
    fn per_unit_states_of_the_wrong_count_are_refused() {
        // systemd 219's is-enabled stops at the first unit without a unit file.
        assert_eq!(states("enabled\n", 2), None);
        assert_eq!(states("active\nactive\nactive\n", 2), None);
        assert_eq!(states("", 1), None);
    }

    #[test]
    fn which_states_count() {
        for s in [
            "active",
            "reloading",
            "refreshing",
            "activating",
            "deactivating",
        ] {
            assert!(is_active_state(s), "{s}");
        }
        for s in ["inactive", "failed", "unknown", ""] {
            assert!(!is_active_state(s), "{s}");
        }
        for s in ["enabled", "enabled-runtime"] {
            assert!(is_enabled_state(s), "{s}");
        }
        for s in [
            "disabled",
            "static",
            "masked",
            "not-found",
            "linked",
            "alias",
        ] {
            assert!(!is_enabled_state(s), "{s}");
        }
    }
}
