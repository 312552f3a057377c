//! How changes of several steps (and re-applies) combine, and what is not a change.

use super::*;
use crate::watch::{Change, Kind};
use installer_proto::manifest::sha256_bytes;

fn backup_of(h: &Host, path: &str) -> Option<String> {
    match &h.changes.entries[path] {
        Change::Modified { backup, .. } | Change::Deleted { backup, .. } => backup.clone(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn created_then_modified_stays_created_with_what_the_last_step_left() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/etc/k.conf", "one\n"));
    h.step("b", |d| put(d, "/etc/k.conf", "two\n"));
    match &h.changes.entries["/etc/k.conf"] {
        Change::Created { step, left, .. } => {
            assert_eq!(step, "a");
            assert_eq!(
                left.sha256.as_deref(),
                Some(sha256_bytes(b"two\n").as_str())
            );
        }
        other => panic!("{other:?}"),
    }
    // Undo checks against what b left: removed, not kept as "changed".
    let reports = h.undo(false);
    assert!(kept(&reports).is_empty(), "{reports:?}");
    assert!(!at(h.d(), "/etc/k.conf").exists());
}

#[test]
fn created_then_deleted_is_nothing() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/etc/k.conf", "one\n"));
    h.step("b", |d| fs::remove_file(at(d, "/etc/k.conf")).unwrap());
    assert!(h.changes.is_empty(), "{:?}", h.changes);
}

#[test]
fn modified_twice_keeps_the_original_backup() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/etc/sysctl.conf", "a\n"));
    let first = backup_of(&h, "/etc/sysctl.conf");
    h.step("b", |d| put(d, "/etc/sysctl.conf", "b\n"));
    assert_eq!(backup_of(&h, "/etc/sysctl.conf"), first);
    assert_eq!(h.changes.entries["/etc/sysctl.conf"].step(), "a");
    h.undo(false);
    assert_eq!(read(h.d(), "/etc/sysctl.conf"), "net.ipv4.ip_forward=0\n");
}

#[test]
fn a_persons_edit_between_steps_becomes_the_baseline() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/etc/sysctl.conf", "a\n"));
    put(h.d(), "/etc/sysctl.conf", "operator\n");
    h.step("b", |d| put(d, "/etc/sysctl.conf", "b\n"));
    assert_eq!(
        backup_of(&h, "/etc/sysctl.conf"),
        Some(sha256_bytes(b"operator\n"))
    );
    assert_eq!(h.changes.entries["/etc/sysctl.conf"].step(), "b");
    let reports = h.undo(false);
    assert!(kept(&reports).is_empty(), "{reports:?}");
    assert_eq!(read(h.d(), "/etc/sysctl.conf"), "operator\n");
}

#[test]
fn deleted_then_created_is_modified_with_the_deletes_backup() {
    let mut h = Host::new();
    h.step("a", |d| fs::remove_file(at(d, "/etc/old.conf")).unwrap());
    let deleted = backup_of(&h, "/etc/old.conf");
    h.step("b", |d| put(d, "/etc/old.conf", "new\n"));
    match &h.changes.entries["/etc/old.conf"] {
        Change::Modified { backup, step, .. } => {
            assert_eq!(backup, &deleted);
            assert_eq!(step, "a");
        }
        other => panic!("{other:?}"),
    }
    h.undo(false);
    assert_eq!(read(h.d(), "/etc/old.conf"), "old\n");
}

#[test]
fn put_back_as_it_was_is_no_change() {
    let mut h = Host::new();
    h.step("a", |d| fs::remove_file(at(d, "/etc/old.conf")).unwrap());
    h.step("b", |d| put(d, "/etc/old.conf", "old\n"));
    assert!(h.changes.is_empty(), "{:?}", h.changes);
    h.step("c", |d| put(d, "/etc/sysctl.conf", "x\n"));
    h.step("d", |d| {
        put(d, "/etc/sysctl.conf", "net.ipv4.ip_forward=0\n")
    });
    assert!(h.changes.is_empty(), "{:?}", h.changes);
}

#[test]
fn identical_rewrites_and_directory_mtimes_are_no_change() {
    let mut h = Host::new();
    let s = h.step("a", |d| {
        // Copy tree: same bytes, new inode and mtime.
        let p = at(d, "/etc/sysctl.conf");
        let bytes = fs::read(&p).unwrap();
        fs::remove_file(&p).unwrap();
        fs::write(&p, bytes).unwrap();
        // Directories whose entries came and went.
        put(d, "/etc/sysctl.d/tmp", "x");
        fs::remove_file(at(d, "/etc/sysctl.d/tmp")).unwrap();
        put(d, "/opt/tmp", "x");
        fs::remove_file(at(d, "/opt/tmp")).unwrap();
        // Outside copy trees: a copy that kept size and mtime (only the inode moved).
        let tool = at(d, "/usr/bin/tool");
        let m = fs::metadata(&tool).unwrap();
        let bytes = fs::read(&tool).unwrap();
        fs::remove_file(&tool).unwrap();
        fs::write(&tool, bytes).unwrap();
        fs::set_permissions(&tool, m.permissions()).unwrap();
        let f = fs::File::options().write(true).open(&tool).unwrap();
        f.set_modified(m.modified().unwrap()).unwrap();
    });
    assert!(h.changes.is_empty(), "{:?}", h.changes);
    assert_eq!((s.created, s.modified, s.deleted), (0, 0, 0));
}

#[test]
fn outside_copy_trees_a_new_mtime_is_a_change_that_cannot_be_undone() {
    let mut h = Host::new();
    let s = h.step("a", |d| {
        let f = fs::File::options()
            .write(true)
            .open(at(d, "/usr/bin/tool"))
            .unwrap();
        f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    });
    assert_eq!(s.not_restorable, ["/usr/bin/tool"]);
    assert!(!h.changes.entries["/usr/bin/tool"].restorable());
}

#[test]
fn new_parents_are_entries_and_outside_copy_trees_one_recursive_one() {
    let mut h = Host::new();
    h.step("a", |d| {
        put(d, "/etc/a/b/c.conf", "c");
        put(d, "/opt/x/y/z", "z");
        put(d, "/usr/local/lib/tool/lib.so", "so");
    });
    assert_eq!(
        h.paths(),
        [
            "/etc/a",
            "/etc/a/b",
            "/etc/a/b/c.conf",
            "/opt/x",
            "/usr/local"
        ]
    );
    for p in ["/etc/a", "/etc/a/b"] {
        assert!(
            matches!(&h.changes.entries[p], Change::Created { recursive: false, left, .. } if left.kind == Kind::Dir)
        );
    }
    for p in ["/opt/x", "/usr/local"] {
        assert!(
            matches!(
                &h.changes.entries[p],
                Change::Created {
                    recursive: true,
                    ..
                }
            ),
            "{p}"
        );
    }
    // A later step inside a recursive directory adds nothing: the directory goes as a whole.
    h.step("b", |d| {
        put(d, "/opt/x/more", "m");
        fs::remove_file(at(d, "/opt/x/y/z")).unwrap();
    });
    assert_eq!(h.changes.entries.len(), 5);
    h.undo(false);
    assert!(!at(h.d(), "/opt/x").exists() && !at(h.d(), "/etc/a").exists());
}

#[test]
fn a_person_adding_a_file_to_a_created_directory_keeps_the_directory() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/etc/app/app.conf", "c"));
    put(h.d(), "/etc/app/local.conf", "mine");
    let reports = h.undo(false);
    assert_eq!(
        kept(&reports),
        [(
            "/etc/app".to_string(),
            "not empty: holds files apply did not create, kept".to_string()
        )]
    );
    assert!(!at(h.d(), "/etc/app/app.conf").exists());
    assert_eq!(read(h.d(), "/etc/app/local.conf"), "mine");
}

#[test]
fn shallow_dirs_are_one_entry_and_their_removal_is_not_restorable() {
    let mut h = Host::new();
    h.step("a", |d| {
        put(d, "/var/lib/big/more", "ignored: inside a shallow dir")
    });
    assert!(h.changes.is_empty(), "{:?}", h.changes);
    h.step("b", |d| fs::remove_dir_all(at(d, "/var/lib/big")).unwrap());
    assert_eq!(h.paths(), ["/var/lib/big"]);
    assert!(!h.changes.entries["/var/lib/big"].restorable());
}

#[test]
fn new_dirs_not_walked_are_recursive_even_when_shallow_or_a_missing_tree() {
    let mut h = Host::new();
    let original = tree(h.d());
    h.step("a", |d| {
        put(d, "/var/lib/containerd/io.containerd.content.v1/blob", "b");
        // Shallow inside a copy tree: not walked, so one recursive entry too.
        put(d, "/etc/cache/x", "x");
        put(d, "/srv/www/index.html", "hi");
    });
    assert_eq!(h.paths(), ["/etc/cache", "/srv", "/var/lib/containerd"]);
    for p in h.paths() {
        assert!(
            matches!(
                &h.changes.entries[p],
                Change::Created {
                    recursive: true,
                    ..
                }
            ),
            "{p}"
        );
    }
    let reports = h.undo(false);
    assert!(
        kept(&reports).is_empty() && failures(&reports).is_empty(),
        "{reports:?}"
    );
    assert_same_tree(&original, &tree(h.d()));
}

#[test]
fn a_recursive_dir_removed_by_a_later_step_leaves_nothing() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/opt/app/bin/app", "x"));
    assert_eq!(h.paths(), ["/opt/app"]);
    // The later step walks /opt/app (it existed before it) and sees all of it go.
    h.step("b", |d| fs::remove_dir_all(at(d, "/opt/app")).unwrap());
    assert!(h.changes.is_empty(), "{:?}", h.changes);
}
