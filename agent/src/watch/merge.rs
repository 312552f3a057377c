//! What watched steps changed, as the journal keeps it, and how one step's observations are
//! folded into it: per path, the state before the *first* step that changed it (the
//! baseline clean restores) and what the *last* one left (what clean and drift compare
//! against). A person's edit between two steps starts a new baseline: their version, not
//! ours, is what clean must come back to.

use super::config::parent;
use super::snapshot::{Kind, Meta};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A path's kind, mode, owner and link target: what a restore puts back besides content.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attrs {
    /// What it was.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Attrs {
    pub(crate) fn of(m: &Meta) -> Attrs {
        Attrs {
            kind: m.kind,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            target: m.target.as_deref().map(str::to_string),
        }
    }
}

/// What a step left at a path: metadata for a cheap "unchanged" check, the sha256 (files)
/// as the truth when the metadata moved.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// What it is.
    pub kind: Kind,
    /// Permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the epoch.
    pub mtime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// A regular file's content hash (None when it could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// A symlink's target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Fingerprint {
    /// The fingerprint of `m` with the file's content hash `sha256`.
    pub(crate) fn of(m: &Meta, sha256: Option<String>) -> Fingerprint {
        Fingerprint {
            kind: m.kind,
            mode: m.mode,
            uid: m.uid,
            gid: m.gid,
            size: m.size,
            mtime_ns: m.mtime_ns,
            ino: m.ino,
            sha256,
            target: m.target.as_deref().map(str::to_string),
        }
    }

    /// Whether `m` is still what this records; `hash` gives the current content's sha256
    /// and is called only when a file's metadata moved but its size did not.
    pub(crate) fn matches(&self, m: &Meta, hash: &mut dyn FnMut() -> Option<String>) -> bool {
        if self.kind != m.kind || (self.uid, self.gid) != (m.uid, m.gid) {
            return false;
        }
        match self.kind {
            // A symlink's own mode means nothing on Linux.
            Kind::Symlink => self.target.as_deref() == m.target.as_deref(),
            Kind::Dir | Kind::Other => self.mode == m.mode,
            Kind::File => {
                self.mode == m.mode
                    && self.size == m.size
                    && ((self.mtime_ns, self.ino) == (m.mtime_ns, m.ino)
                        || (self.sha256.is_some() && hash() == self.sha256))
            }
        }
    }
}

/// One path's recorded change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Did not exist before `step`. A directory in a copy tree has its files recorded as
    /// their own entries; elsewhere a new directory is this one entry, `recursive`: clean
    /// removes it with its contents.
    Created {
        /// The step that created it.
        step: String,
        /// What is there now.
        left: Fingerprint,
        /// Removed with its contents (a new directory outside copy trees).
        recursive: bool,
    },
    /// Existed and was changed (content, mode, owner, kind or link target).
    Modified {
        /// The step that changed it first.
        step: String,
        /// The store copy of the content before (its name is that content's sha256).
        backup: Option<String>,
        /// The content changed: restoring needs `backup` (None then means "not restorable":
        /// reported, never touched). False for mode/owner/link-target changes.
        needs_backup: bool,
        /// Kind, mode, owner, target before.
        before: Attrs,
        /// What is there now.
        left: Fingerprint,
    },
    /// Existed and was removed.
    Deleted {
        /// The step that removed it.
        step: String,
        /// The store copy of the content before.
        backup: Option<String>,
        /// Re-creating it needs `backup` (a file; a directory whose contents were not
        /// walked; a device node): None then means "not restorable".
        needs_backup: bool,
        /// Kind, mode, owner, target before.
        before: Attrs,
    },
}

impl Change {
    /// The step the entry is attributed to.
    pub fn step(&self) -> &str {
        match self {
            Change::Created { step, .. }
            | Change::Modified { step, .. }
            | Change::Deleted { step, .. } => step,
        }
    }

    /// Whether undo can bring the baseline back.
    pub fn restorable(&self) -> bool {
        match self {
            Change::Created { .. } => true,
            Change::Modified {
                backup,
                needs_backup,
                ..
            }
            | Change::Deleted {
                backup,
                needs_backup,
                ..
            } => !needs_backup || backup.is_some(),
        }
    }

    fn backup(&self) -> Option<&str> {
        match self {
            Change::Created { .. } => None,
            Change::Modified { backup, .. } | Change::Deleted { backup, .. } => backup.as_deref(),
        }
    }
}

/// Everything watched steps changed, keyed by host path.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// Host path → change.
    pub entries: BTreeMap<String, Change>,
}

impl Changes {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every store copy an entry refers to.
    pub fn backups(&self) -> impl Iterator<Item = &str> {
        self.entries.values().filter_map(Change::backup)
    }

    /// Whether `path` lies inside a directory recorded as created with its contents.
    pub(crate) fn inside_recursive(&self, path: &str) -> bool {
        let mut cur = parent(path);
        while let Some(p) = cur {
            if let Some(Change::Created {
                recursive: true, ..
            }) = self.entries.get(p)
            {
                return true;
            }
            cur = parent(p);
        }
        false
    }
}

/// A path as the step found it.
#[derive(Clone, Debug)]
pub(crate) struct Before {
    pub meta: Meta,
    /// The valid store copy's name (= content sha256), if any.
    pub backup: Option<String>,
}

/// A path as the step left it.
#[derive(Clone, Debug)]
pub(crate) struct After {
    pub left: Fingerprint,
    /// A new directory recorded as one entry.
    pub recursive: bool,
}

/// One path the step changed.
#[derive(Clone, Debug)]
pub(crate) struct Observed {
    pub path: String,
    pub before: Option<Before>,
    pub after: Option<After>,
    /// Undoing this step's change needs the content copy.
    pub needs_backup: bool,
}

/// The state clean is to restore: absent, or a path with attrs and maybe a copy.
enum Baseline {
    Absent,
    Present {
        backup: Option<String>,
        before: Attrs,
        needs_backup: bool,
    },
}

/// Whether the path as this step found it is still what the entry says was left.
fn still_left(prev: &Change, before: Option<&Before>) -> bool {
    let left = match prev {
        Change::Deleted { .. } => return before.is_none(),
        Change::Created { left, .. } | Change::Modified { left, .. } => left,
    };
    let Some(b) = before else { return false };
    // The before-content's hash is known only from a store copy.
    left.matches(&b.meta, &mut || b.backup.clone())
}

/// Folds one step's observations into `changes`.
pub(crate) fn merge(changes: &mut Changes, step: &str, observed: Vec<Observed>) {
    // Judged before anything is merged: a recursive directory this step removes (and whose
    // entry therefore goes) must not turn what was inside it into deletions.
    let inside: Vec<bool> = observed
        .iter()
        .map(|o| changes.inside_recursive(&o.path))
        .collect();
    for (o, inside) in observed.into_iter().zip(inside) {
        if inside {
            // Clean removes the whole directory; what happened inside does not matter.
            continue;
        }
        let prev = changes.entries.remove(&o.path);
        let chained = prev.as_ref().filter(|p| still_left(p, o.before.as_ref()));
        let (baseline, step_name, recursive) = match chained {
            Some(Change::Created {
                step, recursive, ..
            }) => (Baseline::Absent, step.clone(), *recursive),
            Some(Change::Modified {
                step,
                backup,
                needs_backup,
                before,
                ..
            })
            | Some(Change::Deleted {
                step,
                backup,
                needs_backup,
                before,
            }) => (
                Baseline::Present {
                    backup: backup.clone(),
                    before: before.clone(),
                    needs_backup: *needs_backup || o.needs_backup,
                },
                step.clone(),
                false,
            ),
            // First change, or a person changed the path since: this step's before-state is
            // the baseline.
            None => match &o.before {
                None => (Baseline::Absent, step.to_string(), false),
                Some(b) => (
                    Baseline::Present {
                        backup: b.backup.clone(),
                        before: Attrs::of(&b.meta),
                        needs_backup: o.needs_backup,
                    },
                    step.to_string(),
                    false,
                ),
            },
        };
        let entry = match (baseline, o.after) {
            (Baseline::Absent, None) => None,
            (Baseline::Absent, Some(a)) => Some(Change::Created {
                step: step_name,
                left: a.left,
                recursive: recursive || a.recursive,
            }),
            (
                Baseline::Present {
                    backup,
                    before,
                    needs_backup,
                },
                None,
            ) => Some(Change::Deleted {
                step: step_name,
                backup,
                needs_backup,
                before,
            }),
            (
                Baseline::Present {
                    backup,
                    before,
                    needs_backup,
                },
                Some(a),
            ) => {
                let back_to_baseline = before.kind == a.left.kind
                    && (before.mode, before.uid, before.gid)
                        == (a.left.mode, a.left.uid, a.left.gid)
                    && before.target == a.left.target
                    && match before.kind {
                        Kind::File => backup.is_some() && backup == a.left.sha256,
                        _ => true,
                    };
                (!back_to_baseline).then_some(Change::Modified {
                    step: step_name,
                    backup,
                    needs_backup,
                    before,
                    left: a.left,
                })
            }
        };
        if let Some(e) = entry {
            changes.entries.insert(o.path, e);
        }
    }
}
