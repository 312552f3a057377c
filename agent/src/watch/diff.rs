//! What one step changed: the two snapshots merged in path order, each difference judged by
//! what clean could and should undo. Noise is dropped here: a directory whose only change is
//! its mtime (its entries changed), a file rewritten with the same bytes (compared with its
//! store copy), a ctime-only change (a hard link, a chmod back).

use super::merge::{After, Before, Fingerprint, Observed};
use super::snapshot::{Kind, Meta, NEW_OPAQUE, OPAQUE, Snapshot};
use super::store::Store;
use crate::root::HostRoot;
use installer_proto::manifest::sha256_file;
use std::cmp::Ordering;
use std::collections::HashSet;

/// Hashes the regular file at host path `path`.
fn hash(root: &HostRoot, path: &str) -> Option<String> {
    sha256_file(&root.path(path)).ok()
}

fn after_side(root: &HostRoot, path: &str, m: &Meta, known: Option<String>) -> After {
    let sha = match m.kind {
        Kind::File => known.or_else(|| hash(root, path)),
        _ => None,
    };
    After {
        left: Fingerprint::of(m, sha),
        recursive: m.kind == Kind::Dir && m.flags & NEW_OPAQUE != 0,
    }
}

/// Removing a path of this before-state loses what only a copy can bring back.
fn loses_content(b: &Meta) -> bool {
    match b.kind {
        Kind::File | Kind::Other => true,
        Kind::Dir => !b.walked(),
        Kind::Symlink => false,
    }
}

/// Whether anything but content differs.
fn attrs_differ(b: &Meta, a: &Meta) -> bool {
    (b.mode, b.uid, b.gid) != (a.mode, a.uid, a.gid)
}

/// A path present before and after: the observation, or None if nothing that matters moved.
fn changed(root: &HostRoot, store: &Store, path: &str, b: &Meta, a: &Meta) -> Option<Observed> {
    let backup = store.copy_for(path, b).map(|c| c.sha256.clone());
    let observed = |needs_backup: bool, known: Option<String>| Observed {
        path: path.to_string(),
        before: Some(Before {
            meta: b.clone(),
            backup: backup.clone(),
        }),
        after: Some(after_side(root, path, a, known)),
        needs_backup,
    };
    if b.kind != a.kind {
        return Some(observed(loses_content(b), None));
    }
    match a.kind {
        Kind::Dir | Kind::Other => attrs_differ(b, a).then(|| observed(false, None)),
        Kind::Symlink => ((b.uid, b.gid) != (a.uid, a.gid) || b.target != a.target)
            .then(|| observed(false, None)),
        Kind::File => {
            let same_meta = (b.size, b.mtime_ns, b.ino) == (a.size, a.mtime_ns, a.ino);
            let (content, known) = if same_meta {
                // ctime alone moves for a chmod, a new hard link, an xattr.
                (false, None)
            } else if let Some(copy) = backup.as_deref() {
                // The copy is the truth: the same bytes rewritten is no change.
                let now = hash(root, path);
                (now.as_deref() != Some(copy), now)
            } else {
                // No copy to compare with: a size or mtime change is taken as a content
                // change (not restorable); an inode change alone (a copy that kept the
                // mtime) is not.
                (b.size != a.size || b.mtime_ns != a.mtime_ns, None)
            };
            (content || attrs_differ(b, a)).then(|| observed(content, known))
        }
    }
}

/// Whether some ancestor of `path` is in `set`.
fn under(set: &HashSet<String>, path: &str) -> bool {
    let mut cur = super::config::parent(path);
    while let Some(p) = cur {
        if set.contains(p) {
            return true;
        }
        cur = super::config::parent(p);
    }
    false
}

/// Every change between `before` and `after`, in path order.
pub(crate) fn diff(
    root: &HostRoot,
    store: &Store,
    before: &Snapshot,
    after: &Snapshot,
) -> Vec<Observed> {
    // Directories walked on one side only (a mount point appeared or went, unreadable):
    // what is inside them on the other side is not known to have come or gone.
    let unseen = |a: &Snapshot, b: &Snapshot| -> HashSet<String> {
        a.iter()
            .filter(|(p, m)| {
                m.kind == Kind::Dir && m.flags & OPAQUE != 0 && b.get(p).is_some_and(Meta::walked)
            })
            .map(|(p, _)| p.to_string())
            .collect()
    };
    let (unseen_after, unseen_before) = (unseen(after, before), unseen(before, after));
    let mut out = Vec::new();
    let (mut bi, mut ai) = (
        before.entries.iter().peekable(),
        after.entries.iter().peekable(),
    );
    loop {
        let order = match (bi.peek(), ai.peek()) {
            (None, None) => break,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some(b), Some(a)) => b.path.cmp(&a.path),
        };
        match order {
            Ordering::Equal => {
                let (Some(b), Some(a)) = (bi.next(), ai.next()) else {
                    break;
                };
                if b.meta == a.meta {
                    continue;
                }
                if let Some(o) = changed(root, store, &b.path, &b.meta, &a.meta) {
                    out.push(o);
                }
            }
            Ordering::Less => {
                let Some(b) = bi.next() else { break };
                if under(&unseen_after, &b.path) {
                    continue;
                }
                out.push(Observed {
                    path: b.path.to_string(),
                    before: Some(Before {
                        meta: b.meta.clone(),
                        backup: store.copy_for(&b.path, &b.meta).map(|c| c.sha256.clone()),
                    }),
                    after: None,
                    needs_backup: loses_content(&b.meta),
                });
            }
            Ordering::Greater => {
                let Some(a) = ai.next() else { break };
                if under(&unseen_before, &a.path) {
                    continue;
                }
                out.push(Observed {
                    path: a.path.to_string(),
                    before: None,
                    after: Some(after_side(root, &a.path, &a.meta, None)),
                    needs_backup: false,
                });
            }
        }
    }
    out
}
