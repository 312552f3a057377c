//! Install `bin/*` into `/usr/local/bin`: each file written to a temporary name, fsynced and
//! renamed into place with its mode; a different file that was there before is backed up
//! first and recorded, so `clean` restores it. A symlink in `bin/` that names another file
//! there (`kubectl-convert -> kubectl`) becomes the same link in `/usr/local/bin`, placed
//! the same way and recorded like a file, so clean removes it and re-apply checks it; links
//! that lead anywhere else were refused with the plan ([`installer_proto::bin_links`]).

use super::installed::{self, Want};
use super::{Ctx, StepResult, Written, step_err};
use crate::fsutil;
use crate::journal::Journal;
use crate::root::HostRoot;
use installer_proto::bin_links;
use installer_proto::manifest::{Entry, EntryKind};
use installer_proto::plan::Plan;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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

/// What one entry of `bin/` becomes on the host: a regular file with its content and mode,
/// or a symlink to a name in the same directory.
fn want_of(plan: &Plan, entry: &Entry) -> Result<Want, String> {
    match &entry.kind {
        EntryKind::File { sha256, .. } => Ok(Want::File {
            sha256: sha256.clone(),
            mode: entry.mode,
        }),
        EntryKind::Symlink { .. } => bin_links::target_name(&plan.manifest, entry).map(Want::Link),
        EntryKind::Dir => Err(format!("{} is a directory", entry.path)),
    }
}

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let bin_dir = ctx.root.path(BIN_DIR);
    let created = fsutil::create_dirs(&bin_dir).map_err(step_err)?;
    installed::record_created_dirs(ctx, &created)?;
    let mut entries: Vec<Entry> = bin_files(ctx.plan).cloned().collect();
    // Files first, so a link never points at a name that is not there yet.
    entries.sort_by_key(|e| !e.is_file());
    let mut written = Written::default();
    for entry in entries {
        let want = want_of(ctx.plan, &entry).map_err(step_err)?;
        let name = entry.path.trim_start_matches("bin/");
        let host_path = format!("{BIN_DIR}/{name}");
        let target = ctx.root.path(&host_path);
        let source = format!("the rootfs's bin/{name}");
        if !installed::claim(ctx, &host_path, &target, &source, &want)? {
            continue;
        }
        match &want {
            Want::File { mode, .. } => {
                let source = ctx.paths.rootfs.join(&entry.path);
                fsutil::copy_atomic(&source, &target).map_err(step_err)?;
                fs::set_permissions(&target, fs::Permissions::from_mode(*mode))
                    .map_err(|e| step_err(fsutil::ctx(&target, "setting mode")(e)))?;
            }
            Want::Link(to) => place_link(to, &target).map_err(step_err)?,
        }
        installed::record_left(ctx, &host_path, &target, matches!(want, Want::Link(_)))?;
        written.files += 1;
        written.bytes += entry.size();
    }
    Ok(written)
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
    bin_files(plan).find_map(|entry| {
        let host_path = format!("{BIN_DIR}/{}", entry.path.trim_start_matches("bin/"));
        match want_of(plan, entry) {
            Ok(want) => installed::drift(root, journal, &host_path, &want),
            Err(e) => Some(e),
        }
    })
}
