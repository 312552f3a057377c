//! The files the agent itself wrote: installed binaries (each restored from its backup, or
//! removed), the tagged `/etc/hosts` lines, rendered configs, and finally the cluster
//! directory and the directories apply created. Each undo leaves the journal as soon as it
//! is done; what could not be undone stays in it for the next clean.

use super::Cleaner;
use crate::fingerprint::Comparison;
use crate::fsutil;
use crate::journal::Journal;
use crate::owner;
use crate::steps::hosts_file;
use std::fs;

/// What clean says of a file a person changed after apply.
pub(crate) const KEPT: &str =
    "changed since apply, kept (clean --force restores it as it was before apply)";

/// Restores or removes every installed file, newest record first.
pub(super) fn undo_installed(cleaner: &mut Cleaner<'_>, journal: &mut Journal) {
    let backup_dir = journal.backup_dir();
    let installed: Vec<_> = journal
        .record
        .installed
        .iter()
        .rev()
        .map(|(p, i)| (p.clone(), i.clone()))
        .collect();
    for (host_path, item) in installed {
        let target = cleaner.root.path(&host_path);
        let state = item.left.as_ref().map(|l| l.compare(&target));
        if state == Some(Comparison::Changed) && !cleaner.force {
            cleaner.pending(host_path, KEPT.into());
            continue;
        }
        let result = match &item.backup {
            Some(name) => fsutil::copy_atomic(&backup_dir.join(name), &target)
                .map(|_| format!("{host_path} (restored the file it replaced)")),
            None => fsutil::remove_file_if_exists(&target).map(|_| host_path.clone()),
        };
        match result {
            Ok(what) => {
                // The backup file stays until the whole clean is done (it goes with the
                // state directory): only the record of this path is finished.
                if let Err(e) = journal.update(|r| {
                    r.installed.remove(&host_path);
                }) {
                    cleaner.pending(host_path, e.to_string());
                    continue;
                }
                cleaner.undone(what);
            }
            Err(e) => cleaner.pending(host_path, e.to_string()),
        }
    }
}

/// Removes the tagged `/etc/hosts` lines and puts back the ones they replaced.
pub(super) fn undo_hosts(cleaner: &mut Cleaner<'_>, journal: &mut Journal) {
    let Some(hosts) = journal.record.hosts.clone() else {
        return;
    };
    let path = match hosts_file::hosts_path(cleaner.root, Some(&hosts)) {
        Ok(p) => p,
        Err(e) => return cleaner.pending(hosts_file::HOSTS_FILE.into(), e),
    };
    match hosts_file::undo(&path, &hosts) {
        Ok(changed) => {
            if let Err(e) = journal.update(|r| r.hosts = None) {
                cleaner.pending(hosts_file::HOSTS_FILE.into(), e.to_string());
                return;
            }
            if changed {
                cleaner.undone(format!(
                    "{} lines tagged {}",
                    hosts_file::HOSTS_FILE,
                    installer_proto::plan::HOSTS_TAG
                ));
            }
        }
        Err(e) => cleaner.pending(hosts_file::HOSTS_FILE.into(), e.to_string()),
    }
}

/// Rendered configs a person edited in the host's rootfs copy are kept (the cluster
/// directory with them) unless forced.
pub(super) fn check_rendered(cleaner: &mut Cleaner<'_>, journal: &Journal) {
    if cleaner.force {
        return;
    }
    for (rel, left) in &journal.record.rendered {
        let target = cleaner.paths.rootfs.join(rel);
        if left.compare(&target) == Comparison::Changed {
            cleaner.pending(format!("{}/{rel}", cleaner.paths.host_rootfs), KEPT.into());
        }
    }
}

/// Removes the cluster directory: all of it when apply created it, else only what apply
/// put in it; the rootfs stays with `keep_rootfs`.
pub(super) fn remove_cluster_dir(cleaner: &mut Cleaner<'_>, created: bool, keep_rootfs: bool) {
    let paths = cleaner.paths.clone();
    let result = if created && !keep_rootfs {
        fs::remove_dir_all(&paths.cluster_dir)
    } else {
        let mut ours = vec![paths.state.clone(), paths.staging.clone()];
        if !keep_rootfs {
            ours.push(paths.rootfs.clone());
        }
        let mut result = Ok(());
        for p in ours {
            match fs::remove_dir_all(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => result = Err(e),
            }
        }
        // The marker goes last: while anything of ours is left, the directory stays
        // recognisably ours.
        if result.is_ok() && !keep_rootfs {
            let _ = fsutil::remove_file_if_exists(&paths.cluster_dir.join(owner::MARKER));
            if created {
                result = fs::remove_dir(&paths.cluster_dir);
            }
        }
        result
    };
    match result {
        Ok(()) => cleaner.undone(if keep_rootfs {
            format!("{} (rootfs kept)", paths.host_cluster_dir)
        } else {
            paths.host_cluster_dir.clone()
        }),
        Err(e) => cleaner.not_undone(paths.host_cluster_dir.clone(), e.to_string()),
    }
}

/// With the rootfs kept: removes what the fan-out's push added to the registry's storage
/// (without it, the rootfs goes whole). Only the recorded directories: blobs the registry
/// held before, or that people pushed, stay.
pub(super) fn remove_published(
    cleaner: &mut Cleaner<'_>,
    journal: &mut Journal,
    keep_rootfs: bool,
) {
    if !keep_rootfs || journal.record.published.is_empty() {
        return;
    }
    let rootfs = cleaner.paths.rootfs.clone();
    let mut left = std::collections::BTreeSet::new();
    for rel in &journal.record.published {
        let Ok(path) = installer_proto::manifest::join_rel(&rootfs, rel) else {
            continue;
        };
        match fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                cleaner.not_undone(path.display().to_string(), e.to_string());
                left.insert(rel.clone());
            }
        }
    }
    let removed = journal.record.published.len() - left.len();
    if journal.update(|r| r.published = left).is_ok() && removed > 0 {
        cleaner.undone(format!(
            "{} blob director{} the fan-out pushed into the registry",
            removed,
            if removed == 1 { "y" } else { "ies" }
        ));
    }
}

/// Starts a new record holding only `dirs` (the directories apply created around a kept
/// rootfs), so that a later clean, or the apply that reuses the rootfs, still knows them.
pub(super) fn remember_created_dirs(
    cleaner: &mut Cleaner<'_>,
    req: &super::CleanRequest,
    dirs: &[String],
) {
    if dirs.is_empty() {
        return;
    }
    let state = cleaner.paths.state.clone();
    let kept = Journal::open(&state, &req.cluster, &req.data_root)
        .and_then(|mut j| j.update(|r| r.created_dirs = dirs.to_vec()));
    if let Err(e) = kept {
        cleaner.not_undone(
            state.display().to_string(),
            format!("recording the directories around the kept rootfs: {e}"),
        );
    }
}

/// Removes the directories apply created (parents of the cluster directory, `/usr/local/bin`
/// in a bare root, …), innermost first, each only when it is empty.
pub(super) fn remove_created_dirs(cleaner: &mut Cleaner<'_>, dirs: &[String], keep_rootfs: bool) {
    for dir in dirs.iter().rev() {
        let real = cleaner.root.path(dir);
        if keep_rootfs && cleaner.paths.rootfs.starts_with(&real) {
            continue;
        }
        match fs::remove_dir(&real) {
            Ok(()) => cleaner.undone(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTEMPTY) => cleaner.not_undone(
                dir.clone(),
                "kept: apply created it, but it now holds files apply did not put there".into(),
            ),
            Err(e) => cleaner.not_undone(dir.clone(), format!("not removed: {e}")),
        }
    }
}
