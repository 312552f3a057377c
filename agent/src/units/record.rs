//! [`UnitChanges`]: which units the rootfs scripts started or enabled, kept in the journal so
//! a re-apply can check them and `clean` can undo them.

use super::{Systemd, UnitState, UnitsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Units steps started or enabled, by unit name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UnitChanges {
    /// What was done to each unit.
    #[serde(default)]
    pub units: BTreeMap<String, UnitRecord>,
}

/// What steps did to one unit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UnitRecord {
    /// The step that first started or enabled it.
    pub step: String,
    /// A step started it (and clean has not stopped it yet).
    #[serde(default)]
    pub started: bool,
    /// A step enabled it (and clean has not disabled it yet).
    #[serde(default)]
    pub enabled: bool,
}

/// What [`UnitChanges::undo`] did with one unit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum UnitReport {
    /// The unit is stopped and disabled as far as steps had changed it; no longer recorded.
    Undone {
        /// The unit.
        unit: String,
        /// The step that had changed it.
        step: String,
    },
    /// Something could not be undone; the unit stays recorded so the next clean retries.
    Failed {
        /// The unit.
        unit: String,
        /// The step that had changed it.
        step: String,
        /// What went wrong.
        reason: String,
    },
    /// The final `daemon-reload` failed (the units themselves were undone).
    ReloadFailed {
        /// What went wrong.
        reason: String,
    },
}

impl UnitChanges {
    /// Whether nothing is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// Records what became active or enabled between `before` and `after` as done by `step`.
    /// A unit already active before the step belongs to whoever started it, so neither its
    /// starting nor its enabling is taken as the step's. A unit recorded by an earlier step
    /// keeps that step (undo does not care which step it was, and the first one is the one
    /// that changed the host); its flags only grow.
    pub(crate) fn record(&mut self, step: &str, before: &UnitState, after: &UnitState) {
        let started = after.active.difference(&before.active);
        let enabled = after
            .enabled
            .difference(&before.enabled)
            .filter(|u| !before.active.contains(*u));
        for (unit, is_start) in started
            .map(|u| (u, true))
            .chain(enabled.map(|u| (u, false)))
        {
            let rec = self
                .units
                .entry(unit.clone())
                .or_insert_with(|| UnitRecord {
                    step: step.to_string(),
                    started: false,
                    enabled: false,
                });
            if is_start {
                rec.started = true;
            } else {
                rec.enabled = true;
            }
        }
    }

    /// The first of `step`'s units that is no longer as the step left it (recorded started
    /// but not active, or recorded enabled but not enabled), as a message such as
    /// `containerd.service is not active`; `None` if all are. One `is_active` and one
    /// `is_enabled` call at most, for all of the step's units together.
    pub(crate) fn drift(&self, step: &str, sd: &dyn Systemd) -> Result<Option<String>, UnitsError> {
        let mine: Vec<(&String, &UnitRecord)> =
            self.units.iter().filter(|(_, r)| r.step == step).collect();
        let started: Vec<String> = mine
            .iter()
            .filter(|(_, r)| r.started)
            .map(|(u, _)| (*u).clone())
            .collect();
        let enabled: Vec<String> = mine
            .iter()
            .filter(|(_, r)| r.enabled)
            .map(|(u, _)| (*u).clone())
            .collect();
        let active = ask(&started, |u| sd.is_active(u))?;
        let on = ask(&enabled, |u| sd.is_enabled(u))?;
        // A unit missing from an answer is taken as drifted: re-running the step is the safe
        // side of not knowing.
        for (unit, rec) in mine {
            if rec.started && active.get(unit) != Some(&true) {
                return Ok(Some(format!("{unit} is not active")));
            }
            if rec.enabled && on.get(unit) != Some(&true) {
                return Ok(Some(format!("{unit} is not enabled")));
            }
        }
        Ok(None)
    }

    /// Stops (then resets the failed state of) every recorded unit steps started and
    /// disables every one they enabled, reporting each unit through `report`. What is done
    /// is forgotten at once; what failed stays recorded for the next clean to retry. A unit
    /// already inactive or disabled (the rootfs's clean scripts, which run first, usually
    /// see to that) counts as undone without being touched. One `daemon-reload` at the end
    /// if any unit was stopped or disabled.
    pub(crate) fn undo(&mut self, sd: &dyn Systemd, report: &mut dyn FnMut(UnitReport)) {
        if self.units.is_empty() {
            return;
        }
        let of = |flag: fn(&UnitRecord) -> bool| -> Vec<String> {
            self.units
                .iter()
                .filter(|(_, r)| flag(r))
                .map(|(u, _)| u.clone())
                .collect()
        };
        // A unit a step enabled is stopped too when it runs: it was not running before the
        // step (those are never recorded), so whatever runs it now came from the step — also
        // when the step's after-snapshot caught it still starting and missed it as started.
        let (started, enabled) = (of(|r| r.started || r.enabled), of(|r| r.enabled));
        let active = ask(&started, |u| sd.is_active(u)).map_err(|e| e.to_string());
        let on = ask(&enabled, |u| sd.is_enabled(u)).map_err(|e| e.to_string());
        let mut changed = false;
        let units: Vec<String> = self.units.keys().cloned().collect();
        for unit in units {
            let Some(rec) = self.units.get_mut(&unit) else {
                continue;
            };
            let mut reasons = Vec::new();
            if rec.started || rec.enabled {
                match undo_one(&active, &unit, "active", || stop(sd, &unit)) {
                    Ok(did) => {
                        rec.started = false;
                        changed |= did;
                    }
                    Err(e) => reasons.push(e),
                }
            }
            if rec.enabled {
                match undo_one(&on, &unit, "enabled", || sd.disable(&unit)) {
                    Ok(did) => {
                        rec.enabled = false;
                        changed |= did;
                    }
                    Err(e) => reasons.push(e),
                }
            }
            let step = rec.step.clone();
            if reasons.is_empty() {
                self.units.remove(&unit);
                report(UnitReport::Undone { unit, step });
            } else {
                let reason = reasons.join("; ");
                report(UnitReport::Failed { unit, step, reason });
            }
        }
        if changed && let Err(e) = sd.daemon_reload() {
            report(UnitReport::ReloadFailed {
                reason: e.to_string(),
            });
        }
    }
}

/// `query(units)`, without a call when there is nothing to ask about.
fn ask(
    units: &[String],
    query: impl FnOnce(&[String]) -> Result<BTreeMap<String, bool>, UnitsError>,
) -> Result<BTreeMap<String, bool>, UnitsError> {
    if units.is_empty() {
        Ok(BTreeMap::new())
    } else {
        query(units)
    }
}

/// Runs `action` on `unit` if `known` says it is still `what` (or says nothing about it);
/// whether it ran, or why this part of the undo is not done.
fn undo_one(
    known: &Result<BTreeMap<String, bool>, String>,
    unit: &str,
    what: &str,
    action: impl FnOnce() -> Result<(), UnitsError>,
) -> Result<bool, String> {
    match known {
        // Not knowing whether it is still active is not knowing it is undone.
        Err(e) => Err(format!("checking whether it is {what}: {e}")),
        Ok(states) if states.get(unit) == Some(&false) => Ok(false),
        Ok(_) => action().map(|()| true).map_err(|e| e.to_string()),
    }
}

/// Stops `unit` and clears a failed state the stop may have left, so the host does not
/// list it as failed afterwards.
fn stop(sd: &dyn Systemd, unit: &str) -> Result<(), UnitsError> {
    sd.stop(unit)?;
    // Best effort: a unit whose file the clean scripts removed is unloaded once stopped,
    // and systemctl then refuses to reset it although there is nothing left to reset.
    if let Err(e) = sd.reset_failed(unit) {
        tracing::debug!("after stopping {unit}: {e}");
    }
    Ok(())
}
