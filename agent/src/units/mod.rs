//! Systemd units the rootfs scripts enable or start. Around each script step the agent takes
//! a [`UnitState`] before and after and keeps the difference in a [`UnitChanges`] (part of
//! the journal); a re-apply asks [`UnitChanges::drift`] whether those units are still
//! active/enabled and re-runs the step if not; `clean`, after the rootfs's own clean scripts,
//! calls [`UnitChanges::undo`] to stop and disable what is left.
//!
//! Every question and order goes through the [`Systemd`] trait so the bookkeeping is tested
//! against [`RecordingFake`] and never needs a running systemd. [`for_host`] picks the real
//! one ([`RealSystemd`], which runs `systemctl`) only on the real `/` of a host booted with
//! systemd; anywhere else it is [`NoSystemd`], which sees no units and does nothing.
//!
//! The `systemctl` invocations ([`RealSystemd`]), all with `--no-pager --no-ask-password`,
//! unit names after `--`, env `PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C` only:
//!
//! | method | command | timeout |
//! |---|---|---|
//! | `state` | `list-units --type=service,socket,timer,path --state=active --plain --no-legend --full` and `list-unit-files --type=service,socket,timer,path --state=enabled --plain --no-legend --full` | 10 s each |
//! | `is_active` | `is-active -- U…` (one line per unit, in order; exit status ignored) | 10 s |
//! | `is_enabled` | `is-enabled -- U…` (likewise; one unit at a time if an old systemd stops at a missing one) | 10 s |
//! | `stop` | `stop -- U` | 100 s |
//! | `disable` | `disable -- U` | 30 s |
//! | `reset_failed` | `reset-failed -- U` | 10 s |
//! | `daemon_reload` | `daemon-reload` | 30 s |

use crate::root::HostRoot;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[cfg(test)]
mod fake;
#[cfg(test)]
pub(crate) use fake::{Call, RecordingFake};
mod parse;
mod record;
mod systemctl;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub(crate) use record::UnitRecord;
pub(crate) use record::{UnitChanges, UnitReport};
pub(crate) use systemctl::RealSystemd;

/// The unit types steps are watched for. Mounts, scopes, slices and devices come and go on
/// their own (logins, hotplug, containers), so they would be mistaken for a step's work.
pub(crate) const WATCHED_TYPES: [&str; 4] = ["service", "socket", "timer", "path"];

/// What systemd says about the watched units right now.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct UnitState {
    /// Units whose active state is `active`.
    pub active: BTreeSet<String>,
    /// Units whose unit file state is `enabled`.
    pub enabled: BTreeSet<String>,
}

/// A question to or an order for systemd that did not get an answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UnitsError {
    /// The command could not be started.
    #[error("starting {command}: {source}")]
    Spawn {
        /// The command line, for the message.
        command: String,
        /// The spawn error (usually: no `systemctl` on this host).
        source: std::io::Error,
    },
    /// The command ran past its time limit and was killed.
    #[error("{command} did not finish within {secs} s")]
    Timeout {
        /// The command line, for the message.
        command: String,
        /// The limit, in seconds.
        secs: u64,
    },
    /// The command failed.
    #[error("{command} failed ({status}): {stderr}")]
    Failed {
        /// The command line, for the message.
        command: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
    /// The command's output did not have the expected shape.
    #[error("{command} printed something unexpected ({detail}): {stderr}")]
    Output {
        /// The command line, for the message.
        command: String,
        /// What was wrong with it.
        detail: String,
        /// What it wrote to stderr, trimmed.
        stderr: String,
    },
}

/// The seam: everything the agent asks of systemd.
pub(crate) trait Systemd: Send + Sync {
    /// Active and enabled units of the [`WATCHED_TYPES`].
    fn state(&self) -> Result<UnitState, UnitsError>;
    /// Whether each of `units` is running (active, reloading, or on its way up or down); every unit
    /// of `units` is a key of the answer.
    fn is_active(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError>;
    /// Whether each of `units` is enabled (`enabled` or `enabled-runtime`); every unit of
    /// `units` is a key of the answer.
    fn is_enabled(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError>;
    /// Stops `unit`, waiting for it to be stopped.
    fn stop(&self, unit: &str) -> Result<(), UnitsError>;
    /// Disables `unit`.
    fn disable(&self, unit: &str) -> Result<(), UnitsError>;
    /// Makes systemd read the unit files again (after unit files were removed).
    fn daemon_reload(&self) -> Result<(), UnitsError>;
    /// Forgets that `unit` failed, so a unit stopped by clean does not stay listed as failed.
    fn reset_failed(&self, unit: &str) -> Result<(), UnitsError>;
}

/// A host without a running systemd, or a `--root` sandbox: no units, nothing to do.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct NoSystemd;

impl Systemd for NoSystemd {
    fn state(&self) -> Result<UnitState, UnitsError> {
        Ok(UnitState::default())
    }

    fn is_active(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError> {
        Ok(units.iter().map(|u| (u.clone(), false)).collect())
    }

    fn is_enabled(&self, units: &[String]) -> Result<BTreeMap<String, bool>, UnitsError> {
        Ok(units.iter().map(|u| (u.clone(), false)).collect())
    }

    fn stop(&self, _unit: &str) -> Result<(), UnitsError> {
        Ok(())
    }

    fn disable(&self, _unit: &str) -> Result<(), UnitsError> {
        Ok(())
    }

    fn daemon_reload(&self) -> Result<(), UnitsError> {
        Ok(())
    }

    fn reset_failed(&self, _unit: &str) -> Result<(), UnitsError> {
        Ok(())
    }
}

/// Where systemd says it is the running init (see `sd_booted(3)`).
const BOOTED_MARKER: &str = "/run/systemd/system";

/// The systemd of `root`: the real one only for the real `/` of a host booted with systemd
/// that has `systemctl`, so a sandbox or a container without systemd is never touched.
pub(crate) fn for_host(root: &HostRoot) -> Box<dyn Systemd> {
    if !root.is_real() || !Path::new(BOOTED_MARKER).is_dir() {
        return Box::new(NoSystemd);
    }
    match RealSystemd::find() {
        Some(real) => Box::new(real),
        None => {
            tracing::warn!("systemd is running but no systemctl was found; units are not tracked");
            Box::new(NoSystemd)
        }
    }
}
