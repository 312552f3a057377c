//! Clean's half: undo every recorded change — what was created is removed (deepest first),
//! what was changed or deleted is restored (parents first) — each only while the path is
//! still as the step left it, so a person's later edit is never lost silently. Each entry
//! leaves `Changes` as soon as it is undone and the caller's callback runs (and saves the
//! journal), so an interrupted clean resumes where it stopped; an entry found already undone
//! (the crash came between the action and the save) is simply dropped.

use super::merge::{Attrs, Change, Changes, Fingerprint};
use super::removal::{mount_points, remove_tree};
use super::snapshot::{Kind, Meta};
use super::store::object_path;
use crate::fsutil;
use crate::root::HostRoot;
use installer_proto::manifest::sha256_file;
use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::ControlFlow;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt, lchown, symlink};
use std::path::{Path, PathBuf};

/// How to undo.
#[derive(Clone, Debug, Default)]
pub struct UndoOptions {
    /// Undo also what changed since apply left it (a person's edit is overwritten).
    pub force: bool,
}

/// What happened to one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoReport {
    /// Undone; the entry left `Changes`.
    Undone {
        /// Host path.
        path: String,
        /// What was done (`removed`, `restored`, …).
        what: String,
    },
    /// Deliberately not undone; the entry stays in `Changes`.
    Kept {
        /// Host path.
        path: String,
        /// Why (`changed since apply, kept`, `not restorable: …`).
        reason: String,
    },
    /// Undoing failed; the entry stays in `Changes`.
    Failed {
        /// Host path.
        path: String,
        /// The I/O error that stopped the undo, as the operator should read it.
        reason: String,
    },
}

enum Outcome {
    Undone(String),
    Kept(String),
    Failed(String),
}

fn failed(what: &str, e: impl std::fmt::Display) -> Outcome {
    Outcome::Failed(format!("{what}: {e}"))
}

/// The current content hash, computed at most once.
struct Content<'a> {
    real: &'a Path,
    sha: Option<Option<String>>,
}

impl Content<'_> {
    fn get(&mut self) -> Option<String> {
        self.sha
            .get_or_insert_with(|| sha256_file(self.real).ok())
            .clone()
    }
}

/// Undoes every entry of `changes`, removing each from it as it is undone. `report` is told
/// about each entry (with what is left to undo) and may stop the undo by returning `Break`;
/// the return value says whether it did.
pub fn undo(
    root: &HostRoot,
    changes: &mut Changes,
    store_dir: &Path,
    opts: &UndoOptions,
    report: &mut dyn FnMut(UndoReport, &Changes) -> ControlFlow<()>,
) -> ControlFlow<()> {
    let depth = |p: &str| p.matches('/').count();
    let (mut removals, mut restores): (Vec<String>, Vec<String>) = changes
        .entries
        .keys()
        .cloned()
        .partition(|p| matches!(changes.entries[p], Change::Created { .. }));
    removals.sort_by(|a, b| depth(b).cmp(&depth(a)).then_with(|| b.cmp(a)));
    restores.sort_by(|a, b| depth(a).cmp(&depth(b)).then_with(|| a.cmp(b)));
    let mounts = mount_points();
    for path in removals.into_iter().chain(restores) {
        let Some(change) = changes.entries.get(&path).cloned() else {
            continue;
        };
        let real = root.path(&path);
        let outcome = match Meta::probe(&real) {
            Err(e) => failed("reading", e),
            Ok(now) => {
                let mut content = Content {
                    real: &real,
                    sha: None,
                };
                match &change {
                    Change::Created {
                        left, recursive, ..
                    } => remove(&real, now, left, *recursive, opts, &mounts, &mut content),
                    Change::Modified { .. } | Change::Deleted { .. } => {
                        restore_entry(&real, now, &change, store_dir, opts, &mut content)
                    }
                }
            }
        };
        let r = match outcome {
            Outcome::Undone(what) => {
                changes.entries.remove(&path);
                UndoReport::Undone { path, what }
            }
            Outcome::Kept(reason) => UndoReport::Kept { path, reason },
            Outcome::Failed(reason) => UndoReport::Failed { path, reason },
        };
        report(r, changes)?;
    }
    ControlFlow::Continue(())
}

const CHANGED: &str = "changed since apply, kept";

fn remove(
    real: &Path,
    now: Option<Meta>,
    left: &Fingerprint,
    recursive: bool,
    opts: &UndoOptions,
    mounts: &HashSet<PathBuf>,
    content: &mut Content<'_>,
) -> Outcome {
    let Some(now) = now else {
        return Outcome::Undone("already gone".into());
    };
    // A created directory is judged by its entries, not its own mode.
    let as_left = if left.kind == Kind::Dir {
        now.kind == Kind::Dir
    } else {
        left.matches(&now, &mut || content.get())
    };
    if !as_left && !opts.force {
        return Outcome::Kept(CHANGED.into());
    }
    if now.kind != Kind::Dir {
        return match fs::remove_file(real) {
            Ok(()) => Outcome::Undone("removed".into()),
            Err(e) => failed("removing", e),
        };
    }
    if !recursive {
        return match fs::remove_dir(real) {
            Ok(()) => Outcome::Undone("removed directory".into()),
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => {
                Outcome::Kept("not empty: holds files apply did not create, kept".into())
            }
            Err(e) => failed("removing directory", e),
        };
    }
    let top = fs::canonicalize(real).unwrap_or_else(|_| real.to_path_buf());
    if mounts.contains(&top) {
        return Outcome::Kept("is a mount point: not unmounted, kept".into());
    }
    let mut kept = Vec::new();
    match remove_tree(&top, now.dev, mounts, &mut kept) {
        Ok(()) if kept.is_empty() => Outcome::Undone("removed directory with its contents".into()),
        Ok(()) => Outcome::Kept(format!(
            "holds mount points (not unmounted): {}; kept",
            kept.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        Err(e) => failed("removing directory", e),
    }
}

/// Whether `now` is already the baseline (a previous undo restored it before it could save).
fn is_baseline(
    now: &Meta,
    before: &Attrs,
    backup: Option<&str>,
    content: &mut Content<'_>,
) -> bool {
    if now.kind != before.kind || (now.uid, now.gid) != (before.uid, before.gid) {
        return false;
    }
    match before.kind {
        Kind::Symlink => now.target.as_deref() == before.target.as_deref(),
        Kind::Dir | Kind::Other => now.mode == before.mode,
        // Without a copy only the attributes were changed: they decide.
        Kind::File => {
            now.mode == before.mode && backup.is_none_or(|b| content.get().as_deref() == Some(b))
        }
    }
}

fn restore_entry(
    real: &Path,
    now: Option<Meta>,
    change: &Change,
    store_dir: &Path,
    opts: &UndoOptions,
    content: &mut Content<'_>,
) -> Outcome {
    let (step, backup, before, left) = match change {
        Change::Modified {
            step,
            backup,
            before,
            left,
            ..
        } => (step, backup, before, Some(left)),
        Change::Deleted {
            step,
            backup,
            before,
            ..
        } => (step, backup, before, None),
        Change::Created { .. } => return Outcome::Failed("not a restore".into()),
    };
    if !change.restorable() {
        return Outcome::Kept(format!(
            "not restorable: {step} changed it and no copy of its content was kept"
        ));
    }
    if let Some(n) = &now
        && is_baseline(n, before, backup.as_deref(), content)
    {
        return Outcome::Undone("already as before".into());
    }
    let as_left = match (left, &now) {
        (Some(l), Some(n)) => l.matches(n, &mut || content.get()),
        // Deleted: nothing may be there.
        (None, None) => true,
        _ => false,
    };
    if !as_left && !opts.force {
        return Outcome::Kept(CHANGED.into());
    }
    match restore(real, now.as_ref(), before, backup.as_deref(), store_dir) {
        Ok(what) => Outcome::Undone(what.into()),
        Err(e) => failed("restoring", e),
    }
}

/// Sets owner (only when it differs: unprivileged tests own everything) and then mode
/// (chown clears set-id bits).
fn set_attrs(p: &Path, before: &Attrs) -> io::Result<()> {
    let m = fs::symlink_metadata(p)?;
    if (m.uid(), m.gid()) != (before.uid, before.gid) {
        lchown(p, Some(before.uid), Some(before.gid))?;
    }
    if before.kind != Kind::Symlink {
        fs::set_permissions(p, fs::Permissions::from_mode(before.mode))?;
    }
    Ok(())
}

fn temp_for(real: &Path) -> PathBuf {
    let name = real
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    real.with_file_name(format!(".{name}.installer-undo"))
}

/// Clears the way for a non-directory: an empty directory there is removed.
fn clear_dir(real: &Path, now: Option<&Meta>) -> io::Result<()> {
    if now.is_some_and(|n| n.kind == Kind::Dir) {
        fs::remove_dir(real)?;
    }
    Ok(())
}

/// Puts the baseline back at `real`: temp + fsync + rename for files and links, with mode
/// and owner.
fn restore(
    real: &Path,
    now: Option<&Meta>,
    before: &Attrs,
    backup: Option<&str>,
    store: &Path,
) -> io::Result<&'static str> {
    let parent = real.parent().unwrap_or(Path::new("/"));
    match before.kind {
        Kind::Dir => {
            match now {
                Some(n) if n.kind == Kind::Dir => {}
                Some(_) => {
                    fs::remove_file(real)?;
                    fs::create_dir(real)?;
                }
                None => fs::create_dir(real)?,
            }
            set_attrs(real, before)?;
            Ok("restored directory")
        }
        Kind::Symlink => {
            let target = before
                .target
                .as_deref()
                .ok_or_else(|| io::Error::other("no link target recorded"))?;
            clear_dir(real, now)?;
            let tmp = temp_for(real);
            let _ = fs::remove_file(&tmp);
            symlink(target, &tmp)?;
            set_attrs(&tmp, before)?;
            fs::rename(&tmp, real)?;
            fsutil::sync_dir(parent).map_err(|e| e.source)?;
            Ok("restored link")
        }
        Kind::File => {
            let Some(name) = backup else {
                // Only mode or owner changed (needs_backup was false): fix those in place.
                if now.is_some_and(|n| n.kind == Kind::File) {
                    set_attrs(real, before)?;
                    return Ok("restored mode and owner");
                }
                return Err(io::Error::other("no copy of its content was kept"));
            };
            let mut src = File::open(object_path(store, name))?;
            clear_dir(real, now)?;
            let tmp = temp_for(real);
            let _ = fs::remove_file(&tmp);
            let result = (|| {
                let mut out = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&tmp)?;
                io::copy(&mut src, &mut out)?;
                set_attrs(&tmp, before)?;
                out.sync_all()?;
                fs::rename(&tmp, real)
            })();
            if result.is_err() {
                let _ = fs::remove_file(&tmp);
            }
            result?;
            fsutil::sync_dir(parent).map_err(|e| e.source)?;
            Ok("restored")
        }
        Kind::Other => match now {
            Some(n) if n.kind == Kind::Other => {
                set_attrs(real, before)?;
                Ok("restored mode and owner")
            }
            _ => Err(io::Error::other(
                "a device node, FIFO or socket is not re-created",
            )),
        },
    }
}
