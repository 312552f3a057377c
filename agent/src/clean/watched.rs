//! Clean's side of watched steps: stop and disable the units the rootfs's scripts started or
//! enabled, then remove what they created and restore what they changed, each change leaving
//! the record as it is undone so that an interrupted clean resumes where it stopped.

use super::Cleaner;
use crate::journal::Journal;
use crate::units::{self, UnitReport};
use crate::watch::{self, UndoOptions, UndoReport};
use std::ops::ControlFlow;

/// Clean: stops and disables the units steps started or enabled, then removes what they
/// created and restores what they changed; each leaves the record as it is undone.
pub(super) fn undo(cleaner: &mut Cleaner<'_>, journal: &mut Journal) {
    let sd = units::for_host(cleaner.root);
    if !journal.record.units.is_empty() {
        undo_units(cleaner, journal, sd.as_ref());
    }
    if journal.record.watch.is_empty() {
        return;
    }
    let store = cleaner.paths.state.join("watch");
    let mut changes = journal.record.watch.clone();
    let opts = UndoOptions {
        force: cleaner.force,
    };
    let mut reports = Vec::new();
    let mut save_error = None;
    let _ = watch::undo(cleaner.root, &mut changes, &store, &opts, &mut |r, left| {
        // A report that cannot be undone ever leaves the record (it is reported once).
        let never =
            matches!(&r, UndoReport::Kept { reason, .. } if reason.starts_with("not restorable"));
        let mut left = left.clone();
        if let UndoReport::Kept { path, .. } = &r
            && never
        {
            left.entries.remove(path);
        }
        if let Err(e) = journal.update(|rec| rec.watch = left) {
            save_error = Some(e.to_string());
            return ControlFlow::Break(());
        }
        reports.push((r, never));
        ControlFlow::Continue(())
    });
    if let Some(e) = save_error {
        cleaner.pending("the record of what scripts changed".into(), e);
    }
    let mut units_touched = false;
    for (report, never) in reports {
        match report {
            UndoReport::Undone { path, what } => {
                units_touched |= path.contains("/systemd/");
                cleaner.undone(format!("{path} ({what})"));
            }
            UndoReport::Kept { path, reason } if never => cleaner.not_undone(path, reason),
            UndoReport::Kept { path, reason } => cleaner.pending(
                path,
                format!("{reason} (clean --force restores it as it was before apply)"),
            ),
            UndoReport::Failed { path, reason } => cleaner.pending(path, reason),
        }
    }
    if units_touched && let Err(e) = sd.daemon_reload() {
        cleaner.not_undone("systemctl daemon-reload".into(), e.to_string());
    }
    let _ = watch::prune_store(&store, &journal.record.watch);
}

fn undo_units(cleaner: &mut Cleaner<'_>, journal: &mut Journal, sd: &dyn units::Systemd) {
    let mut changes = journal.record.units.clone();
    let mut reports = Vec::new();
    changes.undo(sd, &mut |r| reports.push(r));
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
