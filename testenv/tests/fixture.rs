//! The minimal fixture rootfs, written without any tool from outside the build.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use testenv::fixture::minimal_rootfs;

#[test]
fn minimal_rootfs_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let root = minimal_rootfs(dir.path()).unwrap();
    assert!(root.join("scripts/init-kube.sh").is_file());
    assert!(root.join("bin/fixture-hello").is_file());
}
