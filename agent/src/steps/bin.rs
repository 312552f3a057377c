//! Install `bin/*` into `/usr/local/bin`: each file written to a temporary name, fsynced and
//! renamed into place with its mode; a different file that was there before is backed up
//! first and recorded, so `clean` restores it.

use super::{Ctx, StepResult, Written, step_err};
use crate::fingerprint::{Comparison, Fingerprint};
use crate::fsutil;
use crate::journal::{Installed, Journal};
use crate::root::HostRoot;
use installer_proto::event::Event;
use installer_proto::manifest::{Entry, EntryKind, sha256_file};
use installer_proto::plan::Plan;
use std::fs;
use std::os::unix::fs::PermissionsExt;

/// Where `bin/` goes.
pub const BIN_DIR: &str = "/usr/local/bin";

/// The regular files directly under `bin/`.
pub fn bin_files(plan: &Plan) -> impl Iterator<Item = &Entry> {
    plan.manifest.files().filter(|e| {
        e.path
            .strip_prefix("bin/")
            .is_some_and(|name| !name.contains('/'))
    })
}

/// Runs the step.
pub fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let bin_dir = ctx.root.path(BIN_DIR);
    let created = fsutil::create_dirs(&bin_dir).map_err(step_err)?;
    record_created_dirs(ctx, &created)?;
    let backup_dir = ctx.journal.backup_dir();
    let mut written = Written::default();
    let files: Vec<Entry> = bin_files(ctx.plan).cloned().collect();
    for entry in files {
        let EntryKind::File { sha256, size } = &entry.kind else {
            continue;
        };
        let name = entry.path.trim_start_matches("bin/");
        let host_path = format!("{BIN_DIR}/{name}");
        let target = ctx.root.path(&host_path);
        let source = ctx.paths.rootfs.join(&entry.path);
        let recorded = ctx.journal.record.installed.get(&host_path).cloned();
        let ours = recorded.is_some();
        if let Some(left) = recorded.and_then(|i| i.left)
            && left.compare(&target) == Comparison::Changed
        {
            ctx.sink.event(Event::Warning {
                message: format!(
                    "{host_path} was changed since apply installed it; replaced with the rootfs's bin/{name}"
                ),
            });
        }
        if !ours {
            match fs::symlink_metadata(&target) {
                Ok(meta) => {
                    let same = meta.file_type().is_file()
                        && meta.permissions().mode() & 0o7777 == entry.mode
                        && sha256_file(&target).ok().as_deref() == Some(sha256.as_str());
                    if same {
                        // Already exactly this file and not ours: leave it, record nothing.
                        continue;
                    }
                    fs::create_dir_all(&backup_dir)
                        .map_err(|e| step_err(fsutil::ctx(&backup_dir, "creating")(e)))?;
                    let backup_name = format!("{:03}-{name}", ctx.journal.record.installed.len());
                    let backup = backup_dir.join(&backup_name);
                    if meta.file_type().is_symlink() {
                        return Err(step_err(format!(
                            "{host_path} is a symlink; move it aside (the rootfs installs a file there) and apply again"
                        )));
                    }
                    fsutil::copy_atomic(&target, &backup).map_err(step_err)?;
                    ctx.journal
                        .update(|r| {
                            r.installed.insert(
                                host_path.clone(),
                                Installed {
                                    backup: Some(backup_name.clone()),
                                    left: None,
                                },
                            );
                        })
                        .map_err(step_err)?;
                }
                Err(_) => ctx
                    .journal
                    .update(|r| {
                        r.installed.insert(
                            host_path.clone(),
                            Installed {
                                backup: None,
                                left: None,
                            },
                        );
                    })
                    .map_err(step_err)?,
            }
        }
        fsutil::copy_atomic(&source, &target).map_err(step_err)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(entry.mode))
            .map_err(|e| step_err(fsutil::ctx(&target, "setting mode")(e)))?;
        let left = Fingerprint::of(&target)
            .map_err(|e| step_err(format!("{host_path}: reading back: {e}")))?;
        ctx.journal
            .update(|r| {
                if let Some(i) = r.installed.get_mut(&host_path) {
                    i.left = Some(left);
                }
            })
            .map_err(step_err)?;
        written.files += 1;
        written.bytes += size;
    }
    Ok(written)
}

/// Why the step's result is no longer what it left, if it is not: a binary missing, or
/// other content or mode than the rootfs's.
pub fn drift(root: &HostRoot, plan: &Plan, journal: &Journal) -> Option<String> {
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
            // Identical before apply and left alone: it must still be the rootfs's file.
            None => match fs::symlink_metadata(&target) {
                Err(_) => Comparison::Missing,
                Ok(m)
                    if m.file_type().is_file()
                        && m.permissions().mode() & 0o7777 == entry.mode
                        && sha256_file(&target).ok().as_deref() == entry.sha256() =>
                {
                    Comparison::Same
                }
                Ok(_) => Comparison::Changed,
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
pub fn record_created_dirs(
    ctx: &mut Ctx<'_>,
    created: &[std::path::PathBuf],
) -> Result<(), installer_proto::event::StepError> {
    if created.is_empty() {
        return Ok(());
    }
    let prefix = ctx.root.path("/");
    let host: Vec<String> = created
        .iter()
        .map(|p| {
            let rel = p.strip_prefix(&prefix).unwrap_or(p);
            format!("/{}", rel.display()).replace("//", "/")
        })
        .collect();
    ctx.journal
        .update(|r| r.created_dirs.extend(host))
        .map_err(step_err)
}
