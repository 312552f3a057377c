//! The controller driving the agent's `--root` mode over a real SSH connection: a full apply,
//! a re-apply that sends nothing and runs nothing, one changed file sent alone, and a clean
//! that leaves the host's tree as it was — all visible in the JSON events.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use testenv::hosts::{Cluster, UpOptions};

const PREVIEW: &str = "/root/preview";

#[test]
fn preview_mode_apply_reapply_change_and_clean_over_ssh() {
    let rootfs = tempfile::tempdir().unwrap();
    let fixture = testenv::fixture::minimal_dir();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture.display()))
        .arg(rootfs.path())
        .status()
        .unwrap();
    assert!(status.success());
    let cluster = Cluster::up(UpOptions {
        nodes: 2,
        rootfs: Some(rootfs.path().to_path_buf()),
        ..UpOptions::default()
    })
    .unwrap();
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    let before: Vec<_> = (0..2).map(|i| cluster.snapshot(i).unwrap()).collect();
    let args = ["apply", "--agent-root", PREVIEW];

    let first = installer(&cluster, &args);
    assert_eq!(first.code, 0, "{}", first.describe());
    for (i, ip) in ips.iter().enumerate() {
        assert!(first.files_moved(ip) > 0);
        assert_eq!(first.settled_once(ip), first.started(ip));
        let conf = sh(
            &cluster,
            i,
            &format!("cat {PREVIEW}/var/lib/sealer/data/*/rootfs/etc/app/app.conf"),
        );
        assert!(conf.contains(&format!("host_ip = {ip}")), "{conf}");
        sh(
            &cluster,
            i,
            &format!("test -x {PREVIEW}/usr/local/bin/fixture-hello"),
        );
        // The real system was not touched.
        sh(
            &cluster,
            i,
            "test ! -e /usr/local/bin/fixture-hello && test ! -e /var/lib/sealer",
        );
    }

    let again = installer(&cluster, &args);
    assert_eq!(again.code, 0, "{}", again.describe());
    for ip in &ips {
        assert!(again.started(ip).is_empty(), "{:?}", again.started(ip));
        assert_eq!(again.files_sent(ip), 0);
        assert_eq!(
            again.settled_once(ip).len(),
            first.started(ip).len(),
            "every step is reported skipped, once"
        );
    }

    std::fs::write(rootfs.path().join("etc/static.conf"), "static = changed\n").unwrap();
    let changed = installer(&cluster, &args);
    assert_eq!(changed.code, 0, "{}", changed.describe());
    for ip in &ips {
        assert_eq!(changed.files_moved(ip), 1, "{ip}");
        assert_eq!(changed.started(ip), ["place-rootfs"], "{ip}");
    }

    let clean = installer(&cluster, &["clean", "--agent-root", PREVIEW]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    for (i, snap) in before.iter().enumerate() {
        let changes = testenv::hosts::diff(snap, &cluster.snapshot(i).unwrap());
        assert!(changes.is_empty(), "node{}: {changes:?}", i + 1);
        sh(&cluster, i, &format!("test ! -e {PREVIEW}"));
    }
}
