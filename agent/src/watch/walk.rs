//! Walks the watched trees into a [`Snapshot`]. The cost is one `statx` per path, so the
//! walk is spread over a few threads pulling directories from a shared queue (the syscalls,
//! not the CPU, are the limit; two threads already halve a 150,000-path walk). Entries are
//! lstat'ed relative to their directory (`DirEntry::metadata`), never by full path.

use super::config::{Plan, R_COPY, R_EXCLUDE, R_SHALLOW, R_TREE, join};
use super::snapshot::{Entry, IN_COPY, Meta, NEW_OPAQUE, OPAQUE, Snapshot};
use crate::root::HostRoot;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A directory to read.
struct Item {
    host: String,
    real: PathBuf,
    meta: Meta,
    /// The device of the tree's root: a directory on another is a mount point, not walked.
    dev: u64,
    in_copy: bool,
}

struct Queue {
    items: Vec<Item>,
    busy: usize,
}

struct Ctx<'a> {
    plan: &'a Plan,
    /// Set for an after-snapshot: a directory not in it (outside copy trees) is new and
    /// recorded as one entry, not walked.
    before: Option<&'a Snapshot>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // A worker that panicked is reported by the scope's join; its queue is still sound.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Ctx<'_> {
    /// Whether a directory found at `host` is new and to be kept as one entry, removed
    /// with its contents by clean: outside copy trees, or wherever it is not walked anyway
    /// (shallow, a mount) — never when an excluded path lies inside it.
    fn new_opaque(&self, host: &str, in_copy: bool, opaque: bool) -> bool {
        match self.before {
            Some(b) => {
                (opaque || !in_copy) && b.get(host).is_none() && !self.plan.protected.contains(host)
            }
            None => false,
        }
    }

    fn visit(&self, item: Item, out: &mut Vec<Entry>, found: &mut Vec<Item>) {
        let Item {
            host,
            real,
            mut meta,
            dev,
            in_copy,
        } = item;
        let rules = self.plan.rules.get(&host);
        match fs::read_dir(&real) {
            Err(_) => meta.flags |= OPAQUE,
            Ok(rd) => {
                for ent in rd.flatten() {
                    let name = ent.file_name();
                    // Host paths are strings; a non-UTF-8 name cannot be recorded (nor is one
                    // found in the system trees in practice).
                    let Some(name) = name.to_str() else { continue };
                    let rule = rules.and_then(|r| r.get(name)).copied().unwrap_or(0);
                    if rule & (R_EXCLUDE | R_TREE) != 0 {
                        continue;
                    }
                    // Gone since the listing: the after-snapshot decides what that means.
                    let Ok(m) = ent.metadata() else { continue };
                    let child = join(&host, name);
                    let child_copy = in_copy || rule & R_COPY != 0;
                    let mut flags = if child_copy { IN_COPY } else { 0 };
                    if m.is_dir() {
                        // Shallow trees and mounts are not walked — unless they were empty
                        // before the step (a runtime's data volume mounted but unused):
                        // then what the step put there is cheap to see, and clean must
                        // empty it again.
                        let boundary = rule & R_SHALLOW != 0 || m.dev() != dev;
                        let opaque = boundary
                            && match self.before {
                                None => !is_empty_dir(&real.join(name)),
                                Some(b) => b.get(&child).is_none_or(|bm| !bm.walked()),
                            };
                        if opaque {
                            flags |= OPAQUE;
                        }
                        if self.new_opaque(&child, child_copy, opaque) {
                            flags |= NEW_OPAQUE;
                        }
                        let cmeta = Meta::from_std(&m, None, flags);
                        if cmeta.walked() {
                            found.push(Item {
                                real: real.join(name),
                                host: child,
                                meta: cmeta,
                                dev: m.dev(),
                                in_copy: child_copy,
                            });
                        } else {
                            out.push(Entry {
                                path: child.into(),
                                meta: cmeta,
                            });
                        }
                    } else {
                        let target = if m.file_type().is_symlink() {
                            fs::read_link(real.join(name))
                                .ok()
                                .and_then(|t| t.to_str().map(Box::from))
                        } else {
                            None
                        };
                        out.push(Entry {
                            path: child.into(),
                            meta: Meta::from_std(&m, target, flags),
                        });
                    }
                }
            }
        }
        out.push(Entry {
            path: host.into(),
            meta,
        });
    }

    fn work(&self) -> Vec<Entry> {
        let mut out = Vec::new();
        let mut found = Vec::new();
        loop {
            let item = {
                let mut q = lock(&self.queue);
                loop {
                    if let Some(i) = q.items.pop() {
                        q.busy += 1;
                        break Some(i);
                    }
                    if q.busy == 0 {
                        break None;
                    }
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                }
            };
            let Some(item) = item else {
                self.wake.notify_all();
                return out;
            };
            self.visit(item, &mut out, &mut found);
            let mut q = lock(&self.queue);
            q.busy -= 1;
            let wake = !found.is_empty() || q.busy == 0;
            q.items.append(&mut found);
            drop(q);
            if wake {
                self.wake.notify_all();
            }
        }
    }
}

/// The snapshot of every watched path under `root`. With `before`, new directories outside
/// copy trees are recorded as one entry each and not walked (what is inside is theirs).
pub(crate) fn walk(root: &HostRoot, plan: &Plan, before: Option<&Snapshot>) -> Snapshot {
    let ctx = Ctx {
        plan,
        before,
        queue: Mutex::new(Queue {
            items: Vec::new(),
            busy: 0,
        }),
        wake: Condvar::new(),
    };
    let mut entries = Vec::new();
    for tree in &plan.trees {
        let real = root.path(&tree.host);
        // A tree that does not exist has nothing to record; once a step creates it, its
        // root shows up in the after-snapshot as new.
        let Ok(m) = fs::symlink_metadata(&real) else {
            continue;
        };
        let target = m
            .file_type()
            .is_symlink()
            .then(|| {
                fs::read_link(&real)
                    .ok()
                    .and_then(|t| t.to_str().map(Box::from))
            })
            .flatten();
        let mut flags = if tree.copy { IN_COPY } else { 0 };
        if m.is_dir() && ctx.new_opaque(&tree.host, tree.copy, false) {
            flags |= NEW_OPAQUE;
        }
        let meta = Meta::from_std(&m, target, flags);
        if meta.walked() {
            lock(&ctx.queue).items.push(Item {
                host: tree.host.clone(),
                real,
                dev: m.dev(),
                meta,
                in_copy: tree.copy,
            });
        } else {
            entries.push(Entry {
                path: tree.host.as_str().into(),
                meta,
            });
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().clamp(1, 8));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| ctx.work())).collect();
        for h in handles {
            match h.join() {
                Ok(mut part) => entries.append(&mut part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    Snapshot::from_unsorted(entries)
}

/// Whether `dir` is a directory with nothing in it.
fn is_empty_dir(dir: &std::path::Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_none())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::config::WatchConfig;
    use crate::watch::snapshot::Kind;
    use std::os::unix::fs::symlink;

    fn cfg() -> WatchConfig {
        WatchConfig {
            trees: vec!["/etc".into(), "/var/lib".into()],
            copy_trees: vec!["/etc".into()],
            shallow: vec!["/var/lib/big".into()],
            exclude: vec!["/var/lib/churn".into(), "/etc/skip".into()],
            ..WatchConfig::default()
        }
    }

    #[test]
    fn walks_every_path_except_excluded_and_inside_shallow() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for p in [
            "etc/a/b",
            "var/lib/big/inner",
            "var/lib/churn/x",
            "var/lib/keep",
        ] {
            fs::create_dir_all(d.join(p)).unwrap();
        }
        fs::write(d.join("etc/a/b/f"), "x").unwrap();
        fs::write(d.join("etc/skip"), "x").unwrap();
        fs::write(d.join("var/lib/big/inner/f"), "x").unwrap();
        symlink("../a", d.join("etc/link")).unwrap();
        let root = HostRoot::at(d);
        let plan = Plan::new(&root, &cfg(), &[]);
        let snap = walk(&root, &plan, None);
        let paths: Vec<&str> = snap.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "/etc",
                "/etc/a",
                "/etc/a/b",
                "/etc/a/b/f",
                "/etc/link",
                "/var/lib",
                "/var/lib/big",
                "/var/lib/keep"
            ]
        );
        assert_eq!(
            snap.get("/etc/link").unwrap().target.as_deref(),
            Some("../a")
        );
        assert!(snap.get("/etc/a/b/f").unwrap().in_copy_tree());
        assert!(!snap.get("/var/lib/keep").unwrap().in_copy_tree());
        assert!(!snap.get("/var/lib/big").unwrap().walked());
        assert_eq!(snap.get("/etc/a").unwrap().kind, Kind::Dir);
    }

    #[test]
    fn after_walk_keeps_new_dirs_outside_copy_trees_whole() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("etc")).unwrap();
        fs::create_dir_all(d.join("var/lib")).unwrap();
        let root = HostRoot::at(d);
        let plan = Plan::new(&root, &cfg(), &["/var/lib/agent/state".into()]);
        let before = walk(&root, &plan, None);
        fs::create_dir_all(d.join("var/lib/foo/sub")).unwrap();
        fs::write(d.join("var/lib/foo/a"), "a").unwrap();
        fs::create_dir_all(d.join("etc/new/sub")).unwrap();
        fs::write(d.join("etc/new/sub/f"), "f").unwrap();
        // The parent of an excluded path is walked even when new: never one recursive entry.
        fs::create_dir_all(d.join("var/lib/agent/state")).unwrap();
        fs::write(d.join("var/lib/agent/other"), "o").unwrap();
        let after = walk(&root, &plan, Some(&before));
        let paths: Vec<&str> = after.iter().map(|(p, _)| p).collect();
        assert_eq!(
            paths,
            [
                "/etc",
                "/etc/new",
                "/etc/new/sub",
                "/etc/new/sub/f",
                "/var/lib",
                "/var/lib/agent",
                "/var/lib/agent/other",
                "/var/lib/foo"
            ]
        );
        assert_eq!(
            after.get("/var/lib/foo").unwrap().flags & NEW_OPAQUE,
            NEW_OPAQUE
        );
        assert!(after.get("/var/lib/agent").unwrap().walked());
    }
}
