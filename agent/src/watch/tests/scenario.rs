//! A whole script step recorded and undone; operator edits, unrestorable changes and
//! interrupted undos.

use super::*;
use crate::watch::{Change, Kind, Snapshot};

/// What a typical init script does.
fn init_script(d: &Path) {
    put(d, "/usr/bin/kubelet", "ELF kubelet");
    put(d, "/etc/kubernetes/manifests/etcd.yaml", "kind: Pod\n");
    let mut conf = read(d, "/etc/sysctl.conf");
    conf.push_str("net.ipv4.ip_forward=1\n");
    fs::write(at(d, "/etc/sysctl.conf"), conf).unwrap();
    symlink(
        "/usr/lib/systemd/system/kubelet.service",
        at(
            d,
            "/etc/systemd/system/multi-user.target.wants/kubelet.service",
        ),
    )
    .unwrap();
    put(
        d,
        "/usr/lib/systemd/system/kubelet.service",
        "[Service]\nExecStart=/usr/bin/kubelet\n",
    );
    put(d, "/var/lib/foo/a", "a");
    put(d, "/var/lib/foo/sub/b", "b");
    fs::remove_file(at(d, "/etc/old.conf")).unwrap();
    // Same bytes rewritten (new inode, new mtime): not a change.
    fs::remove_file(at(d, "/etc/hostname")).unwrap();
    put(d, "/etc/hostname", "node1\n");
}

#[test]
fn a_script_step_is_recorded_and_undone_byte_for_byte() {
    let mut h = Host::new();
    let original = tree(h.d());
    let summary = h.step("init-kube", init_script);
    assert_eq!(
        h.paths(),
        [
            "/etc/kubernetes",
            "/etc/kubernetes/manifests",
            "/etc/kubernetes/manifests/etcd.yaml",
            "/etc/old.conf",
            "/etc/sysctl.conf",
            "/etc/systemd/system/multi-user.target.wants/kubelet.service",
            "/usr/bin/kubelet",
            "/usr/lib/systemd/system/kubelet.service",
            "/var/lib/foo",
        ]
    );
    assert_eq!(
        (summary.created, summary.modified, summary.deleted),
        (7, 1, 1)
    );
    assert!(summary.not_restorable.is_empty());
    let e = &h.changes.entries;
    assert!(
        matches!(&e["/var/lib/foo"], Change::Created { recursive: true, left, .. } if left.kind == Kind::Dir)
    );
    assert!(matches!(
        &e["/etc/kubernetes"],
        Change::Created {
            recursive: false,
            ..
        }
    ));
    assert!(
        matches!(&e["/usr/bin/kubelet"], Change::Created { recursive: false, left, .. } if left.kind == Kind::File)
    );
    assert!(matches!(
        &e["/etc/old.conf"],
        Change::Deleted {
            backup: Some(_),
            ..
        }
    ));
    match &e["/etc/sysctl.conf"] {
        Change::Modified {
            step,
            backup: Some(b),
            needs_backup: true,
            before,
            ..
        } => {
            assert_eq!(step, "init-kube");
            assert_eq!(
                fs::read(h.store.path().join("objects").join(b)).unwrap(),
                b"net.ipv4.ip_forward=0\n"
            );
            assert_eq!(before.kind, Kind::File);
        }
        other => panic!("{other:?}"),
    }
    match &e["/etc/systemd/system/multi-user.target.wants/kubelet.service"] {
        Change::Created { left, .. } => {
            assert_eq!(
                left.target.as_deref(),
                Some("/usr/lib/systemd/system/kubelet.service")
            );
        }
        other => panic!("{other:?}"),
    }

    let reports = h.undo(false);
    assert!(
        kept(&reports).is_empty() && failures(&reports).is_empty(),
        "{reports:?}"
    );
    assert_eq!(reports.len(), 9);
    assert!(h.changes.is_empty());
    assert_same_tree(&original, &tree(h.d()));
    // Nothing left to do: a second undo reports nothing.
    assert!(h.undo(false).is_empty());
}

#[test]
fn an_operator_edit_is_kept_unless_forced() {
    let mut h = Host::new();
    let original = tree(h.d());
    h.step("s", |d| {
        put(d, "/etc/new.conf", "ours\n");
        put(d, "/etc/sysctl.conf", "ours\n");
        fs::remove_file(at(d, "/etc/old.conf")).unwrap();
    });
    put(h.d(), "/etc/new.conf", "theirs\n");
    put(h.d(), "/etc/sysctl.conf", "theirs\n");
    put(h.d(), "/etc/old.conf", "theirs\n");
    let reports = h.undo(false);
    let mut k = kept(&reports);
    k.sort();
    assert_eq!(
        k,
        [
            (
                "/etc/new.conf".to_string(),
                "changed since apply, kept".to_string()
            ),
            (
                "/etc/old.conf".to_string(),
                "changed since apply, kept".to_string()
            ),
            (
                "/etc/sysctl.conf".to_string(),
                "changed since apply, kept".to_string()
            ),
        ]
    );
    assert_eq!(h.changes.entries.len(), 3);
    assert_eq!(read(h.d(), "/etc/sysctl.conf"), "theirs\n");
    assert_eq!(read(h.d(), "/etc/new.conf"), "theirs\n");

    let reports = h.undo(true);
    assert!(
        kept(&reports).is_empty() && failures(&reports).is_empty(),
        "{reports:?}"
    );
    assert_same_tree(&original, &tree(h.d()));
}

#[test]
fn what_cannot_be_restored_is_reported_and_kept() {
    let mut h = Host::new();
    // Over copy_file_max (1024 bytes in the test config): never copied.
    put(h.d(), "/etc/huge.conf", &"x".repeat(2000));
    let summary = h.step("s", |d| {
        // Outside copy trees: no copy of the content before.
        put(d, "/usr/bin/tool", "#!/bin/sh\necho patched\n");
        put(d, "/etc/huge.conf", &"y".repeat(2000));
    });
    assert_eq!(summary.not_restorable, ["/etc/huge.conf", "/usr/bin/tool"]);
    let reports = h.undo(false);
    let k = kept(&reports);
    assert_eq!(k.len(), 2, "{reports:?}");
    assert!(
        k.iter()
            .all(|(_, r)| r == "not restorable: s changed it and no copy of its content was kept"),
        "{k:?}"
    );
    assert_eq!(h.paths(), ["/etc/huge.conf", "/usr/bin/tool"]);
    assert_eq!(read(h.d(), "/usr/bin/tool"), "#!/bin/sh\necho patched\n");
    // Still reported, and still not touched, by a forced undo.
    let reports = h.undo(true);
    assert_eq!(kept(&reports).len(), 2);
    assert_eq!(read(h.d(), "/etc/huge.conf"), "y".repeat(2000));
}

#[test]
fn an_interrupted_undo_resumes_and_finishes() {
    let mut h = Host::new();
    let original = tree(h.d());
    h.step("init-kube", init_script);
    let total = h.changes.entries.len();
    let (reports, stopped) = h.undo_until(false, 3);
    assert!(stopped);
    assert_eq!(reports.len(), 3);
    assert_eq!(h.changes.entries.len(), total - 3);
    assert_ne!(tree(h.d()), original);
    let (reports, stopped) = h.undo_until(false, usize::MAX);
    assert!(!stopped);
    assert_eq!(reports.len(), total - 3);
    assert!(h.changes.is_empty());
    assert_same_tree(&original, &tree(h.d()));
}

#[test]
fn an_undo_whose_progress_was_not_saved_finds_its_work_done() {
    let mut h = Host::new();
    let original = tree(h.d());
    h.step("init-kube", init_script);
    // The crash: everything undone, but the journal still holds every entry.
    let stale = h.changes.clone();
    assert!(failures(&h.undo(false)).is_empty());
    h.changes = stale;
    let reports = h.undo(false);
    assert!(
        kept(&reports).is_empty() && failures(&reports).is_empty(),
        "{reports:?}"
    );
    assert!(h.changes.is_empty());
    assert!(
        reports
            .iter()
            .all(|r| matches!(r, UndoReport::Undone { what, .. } if what.starts_with("already")))
    );
    assert_same_tree(&original, &tree(h.d()));
}

#[test]
fn a_saved_before_snapshot_lets_the_next_agent_diff_the_step() {
    let mut h = Host::new();
    let before = h.watcher.before().unwrap();
    let file = h.store.path().join("before.snap");
    before.save(&file).unwrap();
    init_script(h.d());
    // A new agent: a new watcher, the snapshot from disk.
    let mut w = Watcher::new(
        &h.root,
        &test_config(),
        h.store.path().to_path_buf(),
        Vec::new(),
    )
    .unwrap();
    let loaded = Snapshot::load(&file).unwrap();
    assert_eq!(loaded, before);
    let mut changes = Changes::default();
    w.after(&loaded, "init-kube", &mut changes).unwrap();
    h.watcher
        .after(&before, "init-kube", &mut h.changes)
        .unwrap();
    assert_eq!(changes, h.changes);
    assert!(matches!(
        &changes.entries["/etc/sysctl.conf"],
        Change::Modified {
            backup: Some(_),
            ..
        }
    ));
}

#[test]
fn kind_changes_and_link_retargets_are_undone() {
    let mut h = Host::new();
    let original = tree(h.d());
    h.step("s", |d| {
        // A file replaced by a directory with contents, a directory by a file.
        fs::remove_file(at(d, "/etc/sysctl.conf")).unwrap();
        put(d, "/etc/sysctl.conf/inner", "x");
        fs::remove_dir_all(at(d, "/etc/sysctl.d")).unwrap();
        put(d, "/etc/sysctl.d", "now a file");
        // A link retargeted; a mode change only.
        fs::remove_file(at(d, "/etc/systemd/system/sshd.service")).unwrap();
        symlink("/dev/null", at(d, "/etc/systemd/system/sshd.service")).unwrap();
        fs::set_permissions(at(d, "/usr/bin/tool"), fs::Permissions::from_mode(0o700)).unwrap();
    });
    match &h.changes.entries["/usr/bin/tool"] {
        Change::Modified {
            needs_backup,
            backup,
            ..
        } => assert!(!needs_backup && backup.is_none()),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        &h.changes.entries["/etc/sysctl.d/README"],
        Change::Deleted { .. }
    ));
    let reports = h.undo(false);
    assert!(
        kept(&reports).is_empty() && failures(&reports).is_empty(),
        "{reports:?}"
    );
    assert_same_tree(&original, &tree(h.d()));
}

#[test]
fn an_empty_shallow_directory_is_watched_and_emptied_again() {
    let mut h = Host::new();
    // A runtime's data directory (a volume, say) that exists, empty, before apply.
    fs::create_dir_all(at(h.d(), "/var/lib/containerd")).unwrap();
    let original = tree(h.d());
    h.step("init-container-runtime", |d| {
        put(d, "/var/lib/containerd/io.containerd.content.v1/blob", "b");
        put(d, "/var/lib/containerd/meta.db", "m");
    });
    assert!(
        h.paths()
            .iter()
            .any(|p| p.starts_with("/var/lib/containerd/")),
        "{:?}",
        h.paths()
    );
    h.undo(false);
    assert_same_tree(&original, &tree(h.d()));
}
