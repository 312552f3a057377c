//! Excluded paths, the agent's own directories, drift messages, store pruning.

use super::*;
use crate::watch::{Change, drift, prune_store};

#[test]
fn excluded_paths_and_the_agents_own_directories_are_never_recorded() {
    let cfg = test_config();
    let mut h = Host::with(cfg, vec!["/var/lib/data/prod".into()]);
    h.step("a", |d| {
        put(d, "/var/lib/churn/lease", "renewed");
        // The cluster directory, and a new parent of it: the parent is walked (never one
        // recursive entry, which clean would remove with the cluster directory in it).
        put(d, "/var/lib/data/prod/state/journal.json", "{}");
        put(d, "/var/lib/data/other", "by the script");
    });
    assert_eq!(h.paths(), ["/var/lib/data", "/var/lib/data/other"]);
    assert!(matches!(
        &h.changes.entries["/var/lib/data"],
        Change::Created {
            recursive: false,
            ..
        }
    ));
    let reports = h.undo(false);
    assert_eq!(
        kept(&reports),
        [(
            "/var/lib/data".to_string(),
            "not empty: holds files apply did not create, kept".to_string()
        )]
    );
    assert_eq!(read(h.d(), "/var/lib/data/prod/state/journal.json"), "{}");
    assert!(!at(h.d(), "/var/lib/data/other").exists());
}

#[test]
fn a_store_inside_the_root_is_not_watched() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    put(d, "/etc/a", "a");
    let root = HostRoot::at(d);
    let mut cfg = test_config();
    cfg.trees = vec!["/etc".into(), "/var/lib".into()];
    let store = at(d, "/var/lib/x/state/watch");
    let mut w = Watcher::new(&root, &cfg, store.clone(), Vec::new()).unwrap();
    let before = w.before().unwrap();
    assert!(before.get("/var/lib/x/state/watch").is_none());
    assert!(before.get("/var/lib/x/state").is_some());
    put(d, "/etc/a", "changed");
    let mut changes = Changes::default();
    w.after(&before, "s", &mut changes).unwrap();
    // The refresh of the next before() writes objects into the store: still nothing new.
    let before2 = w.before().unwrap();
    let mut changes2 = Changes::default();
    w.after(&before2, "t", &mut changes2).unwrap();
    assert!(changes2.is_empty(), "{changes2:?}");
    assert_eq!(changes.entries.keys().collect::<Vec<_>>(), ["/etc/a"]);
    assert!(store.join("objects").is_dir());
}

#[test]
fn drift_names_the_first_result_that_is_gone_or_changed() {
    let mut h = Host::new();
    h.step("init-kube", |d| {
        put(d, "/usr/bin/kubelet", "ELF");
        put(d, "/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward=1\n");
        put(d, "/etc/sysctl.conf", "edited\n");
        fs::remove_file(at(d, "/etc/old.conf")).unwrap();
    });
    h.step("other", |d| put(d, "/etc/other.conf", "o"));
    assert_eq!(drift(&h.root, &h.changes, "init-kube"), None);

    // Same bytes, new mtime: not drift (the hash decides).
    let f = fs::File::options()
        .write(true)
        .open(at(h.d(), "/etc/sysctl.d/k8s.conf"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH).unwrap();
    // What the step deleted coming back is not drift either.
    put(h.d(), "/etc/old.conf", "back");
    assert_eq!(drift(&h.root, &h.changes, "init-kube"), None);

    put(h.d(), "/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward=0\n");
    assert_eq!(
        drift(&h.root, &h.changes, "init-kube").as_deref(),
        Some("/etc/sysctl.d/k8s.conf changed")
    );
    fs::remove_file(at(h.d(), "/usr/bin/kubelet")).unwrap();
    assert_eq!(
        drift(&h.root, &h.changes, "init-kube").as_deref(),
        Some("/etc/sysctl.d/k8s.conf changed")
    );
    put(h.d(), "/etc/sysctl.d/k8s.conf", "net.ipv4.ip_forward=1\n");
    assert_eq!(
        drift(&h.root, &h.changes, "init-kube").as_deref(),
        Some("/usr/bin/kubelet is missing")
    );
    put(h.d(), "/etc/sysctl.conf", "edited again\n");
    put(h.d(), "/usr/bin/kubelet", "ELF");
    assert_eq!(
        drift(&h.root, &h.changes, "init-kube").as_deref(),
        Some("/etc/sysctl.conf changed")
    );
    assert_eq!(drift(&h.root, &h.changes, "other"), None);
    assert_eq!(drift(&h.root, &h.changes, "never-ran"), None);
}

#[test]
fn prune_keeps_the_copies_changes_and_the_index_refer_to() {
    let mut h = Host::new();
    h.step("a", |d| put(d, "/etc/sysctl.conf", "one\n"));
    h.step("b", |d| put(d, "/etc/sysctl.conf", "two\n"));
    let objects = h.store.path().join("objects");
    let count = || fs::read_dir(&objects).unwrap().count();
    // The original (referenced), "one\n" (neither), plus the other /etc files (index).
    let before = count();
    h.watcher.before().unwrap();
    prune_store(h.store.path(), &h.changes).unwrap();
    // "one\n" went; the index now holds "two\n" instead, added by the refresh.
    assert_eq!(count(), before);
    let backup = h.changes.backups().next().unwrap().to_string();
    assert!(objects.join(&backup).is_file());
    assert!(
        !objects
            .join(installer_proto::manifest::sha256_bytes(b"one\n"))
            .exists()
    );
    let reports = h.undo(false);
    assert!(failures(&reports).is_empty());
    prune_store(h.store.path(), &h.changes).unwrap();
    assert!(!objects.join(&backup).exists(), "no longer referenced");
}
