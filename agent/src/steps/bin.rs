//! Install `bin/*` into `/usr/local/bin`: each file written to a temporary name, fsynced and
//! renamed into place with its mode; a different file that was there before is backed up
//! first and recorded, so `clean` restores it.

use super::{Ctx, StepResult, Written, step_err};
use crate::fsutil;
use crate::journal::Installed;
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
        let ours = ctx.journal.record.installed.contains_key(&host_path);
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
                                },
                            );
                        })
                        .map_err(step_err)?;
                }
                Err(_) => ctx
                    .journal
                    .update(|r| {
                        r.installed
                            .insert(host_path.clone(), Installed { backup: None });
                    })
                    .map_err(step_err)?,
            }
        }
        fsutil::copy_atomic(&source, &target).map_err(step_err)?;
        fs::set_permissions(&target, fs::Permissions::from_mode(entry.mode))
            .map_err(|e| step_err(fsutil::ctx(&target, "setting mode")(e)))?;
        written.files += 1;
        written.bytes += size;
    }
    Ok(written)
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
