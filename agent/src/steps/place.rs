//! Place the rootfs: make `<dataRoot>/<cluster>/rootfs` match the plan's manifest — verified
//! staged files renamed into place, directories and symlinks as listed, modes as listed,
//! anything the manifest no longer lists removed (rendered outputs of listed templates kept).

use super::{Ctx, StepResult, Written, step_err};
use crate::fsutil;
use installer_proto::manifest::{EntryKind, join_rel};
use installer_proto::rootfs::is_product_written;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Runs the step.
pub(crate) fn run(ctx: &mut Ctx<'_>) -> StepResult {
    let rootfs = &ctx.paths.rootfs;
    let staging = &ctx.paths.staging;
    fs::create_dir_all(rootfs).map_err(|e| step_err(fsutil::ctx(rootfs, "creating")(e)))?;
    let mut index = crate::index::load(&ctx.paths.state);
    let mut written = Written::default();
    for entry in &ctx.plan.manifest.entries {
        let target = join_rel(rootfs, &entry.path).map_err(step_err)?;
        match &entry.kind {
            EntryKind::Dir => {
                match fs::symlink_metadata(&target) {
                    Ok(m) if m.file_type().is_dir() => {}
                    Ok(_) => {
                        fs::remove_file(&target)
                            .map_err(|e| step_err(fsutil::ctx(&target, "removing")(e)))?;
                        fs::create_dir(&target)
                            .map_err(|e| step_err(fsutil::ctx(&target, "creating")(e)))?;
                    }
                    Err(_) => fs::create_dir(&target)
                        .map_err(|e| step_err(fsutil::ctx(&target, "creating")(e)))?,
                }
                set_mode(&target, entry.mode)?;
            }
            EntryKind::File { size, sha256 } => {
                if ctx.incoming.is_some_and(|a| a.is_pending(&entry.path)) {
                    // Still arriving: placed once it did, before the step that needs it.
                    // (A staged copy of it is not verified yet.)
                    continue;
                }
                let staged = join_rel(staging, &entry.path).map_err(step_err)?;
                if staged.is_file() {
                    clear_non_file(&target)?;
                    fs::rename(&staged, &target)
                        .map_err(|e| step_err(fsutil::ctx(&target, "moving into place")(e)))?;
                    written.files += 1;
                    written.bytes += size;
                } else if index.file_hash(&target).ok().flatten().as_deref()
                    != Some(sha256.as_str())
                {
                    return Err(step_err(format!(
                        "{}: the host's copy does not match the plan and no new content arrived; run apply again to resend it",
                        entry.path
                    )));
                }
                set_mode(&target, entry.mode)?;
                // Record the placed file, so the next apply finds it without reading it. Its
                // content was verified against the plan's sha256 as it arrived, and the
                // rename keeps it: reading it again here would double the cost of placing.
                // (A file written too recently to trust is left for the next apply.)
                if let Ok(meta) = fs::symlink_metadata(&target) {
                    let _ = index.remember(&target, &meta, sha256);
                }
            }
            EntryKind::Symlink { target: link } => {
                let current = fs::read_link(&target).ok();
                if current.as_deref() != Some(Path::new(link)) {
                    clear_any(&target)?;
                    std::os::unix::fs::symlink(link, &target)
                        .map_err(|e| step_err(fsutil::ctx(&target, "creating symlink")(e)))?;
                }
            }
        }
    }
    remove_unlisted(ctx, rootfs)?;
    index
        .save()
        .map_err(|e| step_err(fsutil::ctx(index.file(), "writing")(e)))?;
    let receiving = ctx.incoming.is_some_and(|a| !a.complete());
    if staging.exists() && !receiving {
        fs::remove_dir_all(staging).map_err(|e| step_err(fsutil::ctx(staging, "removing")(e)))?;
    }
    fsutil::sync_dir(rootfs).map_err(step_err)?;
    Ok(written)
}

/// Moves files that arrived after `place-rootfs` ran (verified on receipt) from staging into
/// the rootfs copy, with their modes, and records them in the hash cache. A file already
/// moved is skipped. Returns how many files and bytes it placed.
pub(crate) fn place_late(
    plan: &installer_proto::plan::Plan,
    paths: &crate::paths::ClusterPaths,
    files: &[String],
) -> Result<Written, String> {
    let mut written = Written::default();
    if files.is_empty() {
        // Nothing arrived since the last step: the hash cache is not read or rewritten.
        return Ok(written);
    }
    let mut index = crate::index::load(&paths.state);
    for path in files {
        let Some(entry) = plan.manifest.get(path) else {
            continue;
        };
        let EntryKind::File { size, sha256 } = &entry.kind else {
            continue;
        };
        let staged = join_rel(&paths.staging, path).map_err(|e| e.to_string())?;
        if !staged.is_file() {
            continue;
        }
        let target = join_rel(&paths.rootfs, path).map_err(|e| e.to_string())?;
        clear_non_file(&target).map_err(|e| e.message)?;
        fs::rename(&staged, &target)
            .map_err(|e| format!("{}: moving into place: {e}", target.display()))?;
        set_mode(&target, entry.mode).map_err(|e| e.message)?;
        if let Ok(meta) = fs::symlink_metadata(&target) {
            let _ = index.remember(&target, &meta, sha256);
        }
        written.files += 1;
        written.bytes += size;
    }
    index
        .save()
        .map_err(|e| format!("{}: writing: {e}", index.file().display()))?;
    Ok(written)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), installer_proto::event::StepError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| step_err(fsutil::ctx(path, "setting mode")(e)))
}

/// Removes whatever is at `path` unless it is a regular file.
fn clear_non_file(path: &Path) -> Result<(), installer_proto::event::StepError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_file() => Ok(()),
        Ok(_) => clear_any(path),
        Err(_) => Ok(()),
    }
}

fn clear_any(path: &Path) -> Result<(), installer_proto::event::StepError> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_dir() => {
            fs::remove_dir_all(path).map_err(|e| step_err(fsutil::ctx(path, "removing")(e)))
        }
        Ok(_) => fs::remove_file(path).map_err(|e| step_err(fsutil::ctx(path, "removing")(e))),
        Err(_) => Ok(()),
    }
}

/// Removes paths the manifest does not list, keeping rendered outputs of listed templates.
fn remove_unlisted(ctx: &Ctx<'_>, rootfs: &Path) -> Result<(), installer_proto::event::StepError> {
    let listed: BTreeSet<&str> = ctx
        .plan
        .manifest
        .entries
        .iter()
        .map(|e| e.path.as_str())
        .collect();
    for path in unlisted(rootfs, &listed) {
        clear_any(&path)?;
    }
    Ok(())
}

/// What under `rootfs` is neither in `listed`, nor the rendered output of a listed template,
/// nor what the product writes there itself (the registry's TLS material, its htpasswd:
/// recorded and removed by clean, not by a re-apply), nor what the registry wrote into its
/// storage; an unlisted directory is one path (it goes whole). Collected before anything
/// is removed: a walk must not remove what it is still reading. An unreadable directory is
/// left as it is.
fn unlisted(rootfs: &Path, listed: &BTreeSet<&str>) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let walk = walkdir::WalkDir::new(rootfs).min_depth(1).into_iter();
    walk.filter_entry(|e| {
        let Ok(rel) = e.path().strip_prefix(rootfs) else {
            return false;
        };
        let rel = rel.to_string_lossy();
        let keep = listed.contains(rel.as_ref())
            || listed.contains(format!("{rel}.tmpl").as_str())
            || is_product_written(&rel)
            || is_registry_storage(&rel);
        if !keep {
            found.push(e.path().to_path_buf());
        }
        keep
    })
    .for_each(drop);
    found
}

/// Whether `rel` lies in the registry's own storage (`registry/`): the running registry writes
/// there (images people push, the fan-out's blobs), so what the manifest does not list there
/// is the registry's, not a leftover of an older rootfs — a re-apply never deletes it.
fn is_registry_storage(rel: &str) -> bool {
    rel.starts_with("registry/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlisted_paths_are_found_whole_and_rendered_outputs_are_kept() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path();
        for dir in [
            "etc/old",
            "bin",
            "gone/deep",
            "certs",
            "registry/docker/pushed",
        ] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        for file in [
            "etc/a.conf",
            "etc/k.yml",
            "etc/old/x",
            "bin/tool",
            "bin/stale",
            "gone/deep/f",
            "certs/sea.hub.key",
            "etc/registry_htpasswd",
            "registry/docker/pushed/data",
        ] {
            fs::write(root.join(file), "x").unwrap();
        }
        let listed = BTreeSet::from([
            "etc",
            "etc/a.conf",
            "etc/k.yml.tmpl",
            "bin",
            "bin/tool",
            "registry",
        ]);
        let mut found = unlisted(root, &listed);
        found.sort();
        assert_eq!(
            found,
            ["bin/stale", "etc/old", "gone"].map(|p| root.join(p)),
            "a listed file, a listed directory's listed contents, a template's output, what the product writes and what the registry wrote stay"
        );
    }
}
