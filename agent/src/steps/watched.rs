//! Steps that run the rootfs's own code (scripts, plugin hooks, the registry start) change
//! the host in ways no manifest lists. Around each, the agent snapshots the watched trees and
//! the systemd units, and records what the step created, changed or removed and which units
//! it started or enabled — so that re-apply can tell a healthy result from a drifted one, and
//! `clean` can undo it also for rootfs trees that ship no clean scripts at all.

use super::{Ctx, StepResult};
use crate::journal::Journal;
use crate::paths::ClusterPaths;
use crate::paths::HOST_STATE_DIR;
use crate::root::HostRoot;
use crate::units;
use crate::watch::{self, Snapshot, WatchConfig, Watcher};
use installer_proto::event::Event;
use std::path::PathBuf;

/// What a watched step hands the next one when nothing runs between them: its watcher (the
/// store stays open) and its after-state, which is the next step's before-state.
pub(crate) struct Carry {
    watcher: Watcher,
    files: Snapshot,
    units: crate::units::UnitState,
}

/// Where a running step's before-snapshot waits.
fn pending_path(paths: &ClusterPaths) -> PathBuf {
    paths.state.join("watch-before")
}

fn watcher(
    root: &HostRoot,
    paths: &ClusterPaths,
    cfg: &WatchConfig,
) -> Result<Watcher, watch::WatchError> {
    // The agent's own writes during a step are not the step's.
    let excludes = vec![paths.host_cluster_dir.clone(), HOST_STATE_DIR.to_string()];
    Watcher::new(root, cfg, paths.state.join("watch"), excludes)
}

/// Runs `f` (the step's own work) with what it changes recorded for `step`. Recording
/// failures are warnings: the step's own result decides whether it failed.
pub(crate) fn run(
    ctx: &mut Ctx<'_>,
    step: &str,
    f: impl FnOnce(&mut Ctx<'_>) -> StepResult,
) -> StepResult {
    let warn = |ctx: &Ctx<'_>, what: String| {
        ctx.sink.event(Event::Warning {
            message: format!("{step}: {what}; clean may leave what it changed"),
        })
    };
    let sd = units::for_host(ctx.root);
    // A watched step right after another starts from that step's after-state.
    let (units_before, started) = match ctx.carry.take() {
        Some(Carry {
            mut watcher,
            files,
            units,
        }) => (
            Ok(units),
            watcher.before_from(files).map(|before| (watcher, before)),
        ),
        None => (
            sd.state(),
            watcher(ctx.root, ctx.paths, &ctx.plan.watch)
                .and_then(|mut w| w.before().map(|before| (w, before))),
        ),
    };
    let mut files = match started.and_then(|(w, before)| {
        before.save(&pending_path(ctx.paths))?;
        Ok((w, before))
    }) {
        Ok(pair) => Some(pair),
        Err(e) => {
            warn(ctx, format!("snapshotting the watched trees: {e}"));
            None
        }
    };
    if files.is_some()
        && let Err(e) = ctx.journal.update(|r| {
            r.watch_pending = Some(step.to_string());
            r.watch_config = Some(ctx.plan.watch.clone());
        })
    {
        warn(ctx, e.to_string());
        files = None;
    }
    let result = f(ctx);
    let mut after_files = None;
    if let Some((mut w, before)) = files {
        match record_files(ctx.journal, &mut w, &before, step, ctx.sink) {
            Ok(after) => after_files = Some((w, after)),
            Err(e) => warn(ctx, format!("recording what it changed: {e}")),
        }
        let _ = std::fs::remove_file(pending_path(ctx.paths));
    }
    let units_after = sd.state();
    if let (Some((watcher, files)), Ok(units)) = (after_files, &units_after) {
        *ctx.carry = Some(Carry {
            watcher,
            files,
            units: units.clone(),
        });
    }
    match (units_before, units_after) {
        (Ok(before), Ok(mut after)) => {
            after.active.retain(|u| !on_demand(u));
            if let Err(e) = ctx
                .journal
                .update(|r| r.units.record(step, &before, &after))
            {
                warn(ctx, format!("recording its systemd units: {e}"));
            }
        }
        (Err(e), _) | (_, Err(e)) => warn(ctx, format!("reading systemd units: {e}")),
    }
    result
}

fn record_files(
    journal: &mut Journal,
    w: &mut Watcher,
    before: &Snapshot,
    step: &str,
    sink: &dyn crate::sink::Sink,
) -> Result<Snapshot, String> {
    let mut changes = journal.record.watch.clone();
    let (summary, after) = w
        .after_keep(before, step, &mut changes)
        .map_err(|e| e.to_string())?;
    journal
        .update(|r| {
            r.watch = changes;
            r.watch_pending = None;
        })
        .map_err(|e| e.to_string())?;
    if !summary.not_restorable.is_empty() {
        let mut list = summary.not_restorable.clone();
        let more = list.len().saturating_sub(5);
        list.truncate(5);
        sink.event(Event::Warning {
            message: format!(
                "{step} changed {} file(s) that existed before and that clean cannot restore (no copy is kept outside the copied trees): {}{}",
                summary.not_restorable.len(),
                list.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() }
            ),
        });
    }
    Ok(after)
}

/// After a crash: records what the step that was running did, from its saved
/// before-snapshot.
pub(crate) fn recover(
    root: &HostRoot,
    paths: &ClusterPaths,
    journal: &mut Journal,
) -> Option<String> {
    let step = journal.record.watch_pending.clone()?;
    let recorded = Snapshot::load(&pending_path(paths))
        .map_err(|e| e.to_string())
        .and_then(|before| {
            // The settings of the step that was running (recorded when it began).
            let cfg = journal.record.watch_config.clone().unwrap_or_default();
            let mut w = watcher(root, paths, &cfg).map_err(|e| e.to_string())?;
            record_files(journal, &mut w, &before, &step, &crate::sink::NullSink).map(|_| ())
        });
    let _ = journal.update(|r| r.watch_pending = None);
    let _ = std::fs::remove_file(pending_path(paths));
    Some(match recorded {
        Ok(()) => format!("recorded what step {step} changed before its agent died"),
        Err(e) => format!("could not record what step {step} changed before its agent died: {e}"),
    })
}

/// systemd's own services that start when asked (`hostnamectl` starts
/// `systemd-hostnamed`) and stop when idle: a step that used them did not start a service
/// of its own, and their stopping later is not drift.
fn on_demand(unit: &str) -> bool {
    (unit.starts_with("systemd-") && unit.ends_with(".service")) || unit.starts_with("dbus-")
}

/// Why what `step` left is no longer there, if it is not: a unit it started is inactive,
/// a file it wrote is missing or changed.
pub(crate) fn drift(root: &HostRoot, journal: &Journal, step: &str) -> Option<String> {
    let sd = units::for_host(root);
    // Not knowing is not drift; the step's inputs decide.
    let unit = journal
        .record
        .units
        .drift(step, sd.as_ref())
        .unwrap_or_default();
    unit.or_else(|| watch::drift(root, &journal.record.watch, step))
}
