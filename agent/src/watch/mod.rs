//! What the rootfs's own scripts and hooks change on the host, so `clean` can undo it (SPEC
//! §6) — sealer rootfs trees often ship no clean scripts at all.
//!
//! Around each script or plugin-hook step the agent takes a metadata snapshot of the watched
//! trees ([`WatchConfig`]) before and after, and folds the difference into [`Changes`],
//! kept in the journal:
//!
//! ```text
//! let mut w = Watcher::new(&root, &cfg, store_dir, extra_excludes)?;
//! let before = w.before()?;            // lstat walk + refresh of the content store
//! before.save(&state.join("watch-before"))?;  // a crashed agent's successor can still diff
//! run_the_step();
//! let summary = w.after(&before, "init-kube", &mut record.watch)?;
//! // clean, after the rootfs's own clean scripts:
//! undo(&root, &mut record.watch, store_dir, &UndoOptions { force }, &mut |report, left| {
//!     save_journal_with(left); show(report); ControlFlow::Continue(())
//! });
//! prune_store(store_dir, &record.watch)?;
//! // converge: drift(&root, &record.watch, "init-kube") -> Some("/etc/x changed")
//! ```
//!
//! - [`Watcher::before`] lstat's every watched path (no hashing) and copies into the store
//!   every file under a copy tree whose metadata moved since its last copy.
//! - [`Watcher::after`] walks again — not into directories that are new outside copy trees
//!   (one recursive entry each) — diffs, hashes only what changed, and merges per path:
//!   the baseline is the state before the first step that changed it, unless a person
//!   changed it between steps (then theirs is).
//! - [`undo`] removes what was created (deepest first) and restores what was changed or
//!   deleted (parents first), each only if still as the step left it (unless `force`).
//! - [`drift`] tells whether a step's recorded results are still there.
//! - [`prune_store`] drops copies nothing refers to.
//!
//! A mount point inside a watched tree is one entry, never walked into, and undo never
//! removes across one. A `backup` names a store copy by its content's sha256
//! (`<store>/objects/<sha256>`). Paths with non-UTF-8 names are not recorded.

mod config;
mod diff;
mod drift;
mod merge;
mod removal;
mod snapshot;
mod store;
mod undo;
mod walk;

#[cfg(test)]
mod tests;

pub use config::WatchConfig;
pub use drift::drift;
pub use merge::{Attrs, Change, Changes, Fingerprint};
pub use snapshot::{Kind, Meta, Snapshot};
pub use store::prune_store;
pub use undo::{UndoOptions, UndoReport, undo};

use crate::fsutil::FsError;
use crate::root::HostRoot;
use std::path::PathBuf;

/// Why watching failed.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// I/O on the store or a snapshot file.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A snapshot file that is not one (truncated, another format).
    #[error("{path}: not a snapshot this agent wrote (truncated or another format)")]
    Corrupt {
        /// The file.
        path: String,
    },
    /// The store index could not be encoded.
    #[error("encoding the watch store index: {0}")]
    Encode(String),
}

/// What one step changed, as counted by [`Watcher::after`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StepSummary {
    /// Paths that appeared.
    pub created: usize,
    /// Paths that changed.
    pub modified: usize,
    /// Paths that went away.
    pub deleted: usize,
    /// Changed or deleted paths clean cannot restore (no copy of their content).
    pub not_restorable: Vec<String>,
}

/// Takes the snapshots around steps and keeps the content store.
#[derive(Debug)]
pub struct Watcher {
    root: HostRoot,
    plan: config::Plan,
    store: store::Store,
}

impl Watcher {
    /// A watcher for `root` with `cfg`, keeping copies in `store_dir` (created, 0700).
    /// `extra_excludes` are host paths the agent itself writes during steps (the cluster
    /// directory, the agent's state): never recorded. `store_dir` itself is excluded too
    /// when it lies inside the root.
    pub fn new(
        root: &HostRoot,
        cfg: &WatchConfig,
        store_dir: PathBuf,
        mut extra_excludes: Vec<String>,
    ) -> Result<Watcher, WatchError> {
        if let Ok(rel) = store_dir.strip_prefix(root.path("/")) {
            extra_excludes.push(format!("/{}", rel.display()));
        }
        let plan = config::Plan::new(root, cfg, &extra_excludes);
        let store = store::Store::open(&store_dir, plan.copy_file_max, plan.copy_total_max)?;
        Ok(Watcher {
            root: root.clone(),
            plan,
            store,
        })
    }

    /// The metadata snapshot of every watched path, after refreshing the content store so
    /// that every file under a copy tree has a copy of its current content (within caps).
    pub fn before(&mut self) -> Result<Snapshot, WatchError> {
        let snap = walk::walk(&self.root, &self.plan, None);
        self.store.refresh(&self.root, &snap)?;
        Ok(snap)
    }

    /// The before-snapshot of a step that follows a watched step directly (nothing changed
    /// the host in between): that step's after-snapshot, with the store refreshed from it —
    /// one walk a step instead of two.
    pub fn before_from(&mut self, after: Snapshot) -> Result<Snapshot, WatchError> {
        self.store.refresh(&self.root, &after)?;
        Ok(after)
    }

    /// Snapshots again, diffs against `before` and merges what `step` changed into
    /// `changes`.
    pub fn after(
        &mut self,
        before: &Snapshot,
        step: &str,
        changes: &mut Changes,
    ) -> Result<StepSummary, WatchError> {
        self.after_keep(before, step, changes)
            .map(|(summary, _)| summary)
    }

    /// [`Watcher::after`], also handing back the after-snapshot (for [`Watcher::before_from`]).
    pub fn after_keep(
        &mut self,
        before: &Snapshot,
        step: &str,
        changes: &mut Changes,
    ) -> Result<(StepSummary, Snapshot), WatchError> {
        let after = walk::walk(&self.root, &self.plan, Some(before));
        let observed = diff::diff(&self.root, &self.store, before, &after);
        let mut summary = StepSummary::default();
        for o in &observed {
            match (&o.before, &o.after) {
                (None, Some(_)) => summary.created += 1,
                (Some(_), Some(_)) => summary.modified += 1,
                (Some(_), None) => summary.deleted += 1,
                (None, None) => {}
            }
            if o.needs_backup && o.before.as_ref().is_some_and(|b| b.backup.is_none()) {
                summary.not_restorable.push(o.path.clone());
            }
        }
        merge::merge(changes, step, observed);
        Ok((summary, after))
    }
}
