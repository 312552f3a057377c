//! Scenario tests: a host tree in a temp dir (`HostRoot::at`), steps as closures that change
//! it, then the recorded changes, undo and drift checked against the tree itself.

mod drift_excludes;
mod merge_rules;
mod scenario;

use super::{Changes, StepSummary, UndoOptions, UndoReport, WatchConfig, Watcher, undo};
use crate::root::HostRoot;
use std::fs;
use std::ops::ControlFlow;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

/// Every path under `dir` (relative): kind, owner, mode, and content hash or link target.
pub(super) fn tree(dir: &Path) -> testenv::tree::TreeSnapshot {
    testenv::tree::snapshot(dir).unwrap()
}

/// Asserts two trees are equal, naming every difference.
pub(super) fn assert_same_tree(a: &testenv::tree::TreeSnapshot, b: &testenv::tree::TreeSnapshot) {
    let diffs = testenv::tree::differences(a, b);
    assert!(diffs.is_empty(), "tree differs:\n{}", diffs.join("\n"));
}

/// Writes `content` at host path `host` under `root`, creating parents.
pub(super) fn put(root: &Path, host: &str, content: &str) {
    let p = at(root, host);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

/// The real path of `host` under `root`.
pub(super) fn at(root: &Path, host: &str) -> PathBuf {
    root.join(host.trim_start_matches('/'))
}

pub(super) fn read(root: &Path, host: &str) -> String {
    fs::read_to_string(at(root, host)).unwrap()
}

pub(super) fn test_config() -> WatchConfig {
    WatchConfig {
        // /srv does not exist until a step creates it.
        trees: vec![
            "/srv".into(),
            "/etc".into(),
            "/usr".into(),
            "/opt".into(),
            "/var/lib".into(),
        ],
        copy_trees: vec!["/etc".into(), "/usr/lib/systemd/system".into()],
        copy_file_max: 1024,
        copy_total_max: 1024 * 1024,
        shallow: vec![
            "/var/lib/big".into(),
            "/var/lib/containerd".into(),
            "/etc/cache".into(),
        ],
        exclude: vec!["/var/lib/churn".into()],
    }
}

/// A host tree, its store, its watcher and the recorded changes.
pub(super) struct Host {
    pub dir: tempfile::TempDir,
    pub store: tempfile::TempDir,
    pub root: HostRoot,
    pub watcher: Watcher,
    pub changes: Changes,
}

impl Host {
    /// A small Debian-like tree.
    pub(super) fn new() -> Host {
        Host::with(test_config(), Vec::new())
    }

    pub(super) fn with(cfg: WatchConfig, extra: Vec<String>) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        put(d, "/etc/hostname", "node1\n");
        put(d, "/etc/sysctl.conf", "net.ipv4.ip_forward=0\n");
        put(d, "/etc/old.conf", "old\n");
        put(d, "/etc/sysctl.d/README", "see sysctl.d(5)\n");
        fs::create_dir_all(at(d, "/etc/systemd/system/multi-user.target.wants")).unwrap();
        put(d, "/usr/bin/tool", "#!/bin/sh\necho tool\n");
        fs::set_permissions(at(d, "/usr/bin/tool"), fs::Permissions::from_mode(0o755)).unwrap();
        put(
            d,
            "/usr/lib/systemd/system/ssh.service",
            "[Unit]\nDescription=ssh\n",
        );
        symlink(
            "/usr/lib/systemd/system/ssh.service",
            at(d, "/etc/systemd/system/sshd.service"),
        )
        .unwrap();
        put(d, "/var/lib/big/data", "runtime data\n");
        put(d, "/var/lib/misc/state", "s\n");
        fs::create_dir_all(at(d, "/opt")).unwrap();
        let store = tempfile::tempdir().unwrap();
        let root = HostRoot::at(d);
        let watcher = Watcher::new(&root, &cfg, store.path().to_path_buf(), extra).unwrap();
        Host {
            dir,
            store,
            root,
            watcher,
            changes: Changes::default(),
        }
    }

    pub(super) fn d(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `f` on the tree as step `name`, watched.
    pub(super) fn step(&mut self, name: &str, f: impl FnOnce(&Path)) -> StepSummary {
        let before = self.watcher.before().unwrap();
        f(self.dir.path());
        self.watcher
            .after(&before, name, &mut self.changes)
            .unwrap()
    }

    /// Undoes everything; returns the reports.
    pub(super) fn undo(&mut self, force: bool) -> Vec<UndoReport> {
        self.undo_until(force, usize::MAX).0
    }

    /// Undoes, stopping after `limit` reports; returns the reports and whether it stopped.
    pub(super) fn undo_until(&mut self, force: bool, limit: usize) -> (Vec<UndoReport>, bool) {
        let mut reports = Vec::new();
        let flow = undo(
            &self.root,
            &mut self.changes,
            self.store.path(),
            &UndoOptions { force },
            &mut |r, _left| {
                reports.push(r);
                if reports.len() >= limit {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        (reports, flow.is_break())
    }

    /// The recorded paths.
    pub(super) fn paths(&self) -> Vec<&str> {
        self.changes.entries.keys().map(String::as_str).collect()
    }
}

/// The path and reason of every `Kept` report.
pub(super) fn kept(reports: &[UndoReport]) -> Vec<(String, String)> {
    reports
        .iter()
        .filter_map(|r| match r {
            UndoReport::Kept { path, reason } => Some((path.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

/// Whether some report is a failure.
pub(super) fn failures(reports: &[UndoReport]) -> Vec<&UndoReport> {
    reports
        .iter()
        .filter(|r| matches!(r, UndoReport::Failed { .. }))
        .collect()
}
