//! Install `bin/*` into `/usr/local/bin`: each file written to a temporary name, fsynced and
//! renamed into place with its mode; a different file that was there before is backed up
//! first and recorded, so `clean` restores it. A symlink in `bin/` that names another file
//! there (`kubectl-convert -> kubectl`) becomes the same link in `/usr/local/bin`, placed
//! the same way and recorded like a file, so clean removes it and re-apply checks it; links
//! that lead anywhere else were refused with the plan ([`installer_proto::bin_links`]).

use super::{Ctx, StepResult, Written, step_err};
use crate::fingerprint::{Comparison, Fingerprint};
use crate::fsutil;
use crate::journal::{Installed, Journal};
use crate::root::HostRoot;
use installer_proto::bin_links;
use installer_proto::event::{Event, StepError};
use installer_proto::manifest::{Entry, EntryKind, sha256_file};
use installer_proto::plan::Plan;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Where `bin/` goes.
pub(crate) const BIN_DIR: &str = "/usr/local/bin";

/// What install-bin installs: the regular files and the symlinks directly under `bin/`.
pub(crate) fn bin_files(plan: &Plan) -> impl Iterator<Item = &Entry> {
    plan.manifest.entries.iter().filter(|e| {
        matches!(e.kind, EntryKind::File { .. } | EntryKind::Symlink { .. })
            && e.path
                .strip_prefix("bin/")
                .is_some_and(|name| !name.is_empty() && !name.contains('/'))
    })
}

/// What one entry of `bin/` becomes on the host.
enum Want<'a> {
    /// A regular file with this content and mode.
    File { sha256: &'a str, mode: u32 },
    /// A symlink with this target (a name in the same directory).
    Link(String),
}

impl Want<'_> {
    fn of<'a>(plan: &'a Plan, entry: &'a Entry) -> Result<Want<'a>, String> {
        match &entry.kind {
            EntryKind::File { sha256, .. } => Ok(Want::File {
                sha256,
                mode: entry.mode,
            }),
            EntryKind::Symlink { .. } => {
                bin_links::target_name(&plan.manifest, entry).map(Want::Link)
            }
            EntryKind::Dir => Err(format!("{} is a directory", entry.path)),
        }
    }

    /// Whether `target` already is exactly this.
    fn is_at(&self, target: &Path) -> bool {
        let Ok(meta) = fs::symlink_metadata(target) else {
            return false;
        };
        match self {
            Want::File { sha256, mode } => {
                meta.file_type().is_file()
                    && meta.permissions().mode() & 0o7777 == *mode
                    && sha256_file(target).ok().as_deref() == Some(*sha256)
            }
            Want::Link(to) => {
                meta.file_type().is_symlink()
                    && fs::read_link(target).is_ok_and(|t| t == Path::new(to))
            }
        }
    }
}

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let bin_dir = ctx.root.path(BIN_DIR);
    let created = fsutil::create_dirs(&bin_dir).map_err(step_err)?;
    record_created_dirs(ctx, &created)?;
    let mut entries: Vec<Entry> = bin_files(ctx.plan).cloned().collect();
    // Files first, so a link never points at a name that is not there yet.
    entries.sort_by_key(|e| !e.is_file());
    let mut written = Written::default();
    for entry in entries {
        let plan = ctx.plan;
        let want = Want::of(plan, &entry).map_err(step_err)?;
        let name = entry.path.trim_start_matches("bin/");
        let host_path = format!("{BIN_DIR}/{name}");
        let target = ctx.root.path(&host_path);
        if !claim(ctx, &host_path, &target, name, &want)? {
            continue;
        }
        let left = match &want {
            Want::File { mode, .. } => {
                let source = ctx.paths.rootfs.join(&entry.path);
                fsutil::copy_atomic(&source, &target).map_err(step_err)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .map_err(|e| step_err(fsutil::ctx(&target, "setting mode")(e)))?;
                Fingerprint::of(&target)
            }
            Want::Link(to) => {
                place_link(to, &target).map_err(step_err)?;
                Fingerprint::of_link(&target)
            }
        }
        .map_err(|e| step_err(format!("{host_path}: reading back: {e}")))?;
        ctx.journal
            .update(|r| {
                if let Some(i) = r.installed.get_mut(&host_path) {
                    i.left = Some(left);
                }
            })
            .map_err(step_err)?;
        written.files += 1;
        written.bytes += entry.size();
    }
    Ok(written)
}

/// Makes `host_path` this step's before anything is written there: records it (with a
/// backup of the file that was there) unless it already is. `false` when it already holds
/// exactly what the rootfs has and is not ours: it is left alone and nothing is recorded.
fn claim(
    ctx: &mut Ctx<'_>,
    host_path: &str,
    target: &Path,
    name: &str,
    want: &Want<'_>,
) -> Result<bool, StepError> {
    let recorded = ctx.journal.record.installed.get(host_path).cloned();
    if let Some(installed) = recorded {
        if let Some(left) = installed.left
            && left.compare(target) == Comparison::Changed
        {
            ctx.sink.event(Event::Warning {
                message: format!(
                    "{host_path} was changed since apply installed it; replaced with the rootfs's bin/{name}"
                ),
            });
        }
        return Ok(true);
    }
    let backup = match fs::symlink_metadata(target) {
        Err(_) => None,
        Ok(_) if want.is_at(target) => return Ok(false),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(step_err(format!(
                "{host_path} is a symlink; move it aside (the rootfs installs {} there) and apply again",
                match want {
                    Want::File { .. } => "a file".to_string(),
                    Want::Link(to) => format!("a link to {to}"),
                }
            )));
        }
        Ok(_) => {
            let backup_dir: PathBuf = ctx.journal.backup_dir();
            fs::create_dir_all(&backup_dir)
                .map_err(|e| step_err(fsutil::ctx(&backup_dir, "creating")(e)))?;
            let backup_name = format!("{:03}-{name}", ctx.journal.record.installed.len());
            fsutil::copy_atomic(target, &backup_dir.join(&backup_name)).map_err(step_err)?;
            Some(backup_name)
        }
    };
    ctx.journal
        .update(|r| {
            r.installed
                .insert(host_path.to_string(), Installed { backup, left: None });
        })
        .map_err(step_err)?;
    Ok(true)
}

/// Puts a symlink to `to` at `target` atomically: made under the temporary sibling name (a
/// crash's leftover there is recognised and removed like a file's) and renamed over
/// whatever is at `target`.
fn place_link(to: &str, target: &Path) -> Result<(), fsutil::FsError> {
    let tmp = fsutil::temp_sibling(target);
    // An interrupted earlier install may have left its temporary link: that name is ours.
    if fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(&tmp).map_err(fsutil::ctx(&tmp, "removing"))?;
    }
    std::os::unix::fs::symlink(to, &tmp).map_err(fsutil::ctx(&tmp, "creating symlink"))?;
    if let Err(e) = fs::rename(&tmp, target) {
        let _ = fs::remove_file(&tmp);
        return Err(fsutil::ctx(target, "renaming into place")(e));
    }
    match target.parent() {
        Some(dir) => fsutil::sync_dir(dir),
        None => Ok(()),
    }
}

/// Why the step's result is no longer what it left, if it is not: a binary or link
/// missing, or other content, mode or link target than the rootfs's.
pub(crate) fn drift(root: &HostRoot, plan: &Plan, journal: &Journal) -> Option<String> {
    for entry in bin_files(plan) {
        let name = entry.path.trim_start_matches("bin/");
        let host_path = format!("{BIN_DIR}/{name}");
        let target = root.path(&host_path);
        let state = match journal
            .record
            .installed
            .get(&host_path)
            .and_then(|i| i.left.as_ref())
        {
            Some(left) => left.compare(&target),
            // Identical before apply and left alone: it must still be the rootfs's.
            None => match Want::of(plan, entry) {
                Ok(want) if want.is_at(&target) => Comparison::Same,
                _ if fs::symlink_metadata(&target).is_err() => Comparison::Missing,
                _ => Comparison::Changed,
            },
        };
        match state {
            Comparison::Same => {}
            Comparison::Missing => return Some(format!("{host_path} is missing")),
            Comparison::Changed => return Some(format!("{host_path} changed")),
        }
    }
    None
}

/// Records directories the agent created (host paths), so `clean` removes exactly them.
pub(crate) fn record_created_dirs(
    ctx: &mut Ctx<'_>,
    created: &[std::path::PathBuf],
) -> Result<(), installer_proto::event::StepError> {
    if created.is_empty() {
        return Ok(());
    }
    let host: Vec<String> = created.iter().map(|p| ctx.root.host_path_of(p)).collect();
    ctx.journal
        .update(|r| r.created_dirs.extend(host))
        .map_err(step_err)
}
