//! Steps that run the rootfs's own code (scripts, plugin hooks, the registry start) change
//! the host in ways no manifest lists. Around each, the agent records which systemd units
//! the step started or enabled, so that re-apply can tell a stopped service from a healthy
//! one and `clean` can stop and disable what the step brought up — also for rootfs trees
//! that ship no clean scripts at all.

use super::{Ctx, StepResult};
use crate::clean::Cleaner;
use crate::journal::Journal;
use crate::root::HostRoot;
use crate::units::{self, UnitReport};
use installer_proto::event::Event;

/// Runs `f` (the step's own work) with its unit changes recorded for `step`. Recording
/// failures are warnings: the step's own result decides whether it failed.
pub fn run(
    ctx: &mut Ctx<'_>,
    step: &str,
    f: impl FnOnce(&mut Ctx<'_>) -> StepResult,
) -> StepResult {
    let sd = units::for_host(ctx.root);
    let before = sd.state();
    let result = f(ctx);
    match (before, sd.state()) {
        (Ok(before), Ok(mut after)) => {
            after.active.retain(|u| !on_demand(u));
            if let Err(e) = ctx
                .journal
                .update(|r| r.units.record(step, &before, &after))
            {
                ctx.sink.event(Event::Warning {
                    message: format!("{step}: recording its systemd units: {e}"),
                });
            }
        }
        (Err(e), _) | (_, Err(e)) => ctx.sink.event(Event::Warning {
            message: format!(
                "{step}: reading systemd units: {e}; clean will not stop what it started"
            ),
        }),
    }
    result
}

/// systemd's own services that start when asked (`hostnamectl` starts
/// `systemd-hostnamed`) and stop when idle: a step that used them did not start a service
/// of its own, and their stopping later is not drift.
fn on_demand(unit: &str) -> bool {
    (unit.starts_with("systemd-") && unit.ends_with(".service")) || unit.starts_with("dbus-")
}

/// Why what `step` left is no longer there, if it is not (a unit it started is inactive).
pub fn drift(root: &HostRoot, journal: &Journal, step: &str) -> Option<String> {
    let sd = units::for_host(root);
    // Not knowing is not drift; the step's inputs decide.
    journal
        .record
        .units
        .drift(step, sd.as_ref())
        .unwrap_or_default()
}

/// Clean: stops and disables the units steps started or enabled; each leaves the record as
/// it is undone.
pub(crate) fn undo(cleaner: &mut Cleaner<'_>, journal: &mut Journal) {
    if journal.record.units.is_empty() {
        return;
    }
    let sd = units::for_host(cleaner.root);
    let mut changes = journal.record.units.clone();
    let mut reports = Vec::new();
    changes.undo(sd.as_ref(), &mut |r| reports.push(r));
    if let Err(e) = journal.update(|r| r.units = changes) {
        cleaner.pending("systemd units".into(), e.to_string());
        return;
    }
    for report in reports {
        match report {
            UnitReport::Undone { unit, step } => {
                cleaner.undone(format!("unit {unit} (started or enabled by {step})"));
            }
            UnitReport::Failed { unit, reason, .. } => {
                cleaner.pending(format!("unit {unit}"), reason)
            }
            UnitReport::ReloadFailed { reason } => {
                cleaner.not_undone("systemctl daemon-reload".into(), reason);
            }
        }
    }
}
