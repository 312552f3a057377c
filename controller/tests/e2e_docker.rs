//! End to end with `containerRuntime: docker`: the fixture rootfs built with Debian's
//! dockerd, two systemd+sshd container hosts. dockerd runs under systemd on both, the
//! registry host runs `sealer-registry` through docker, a worker pulls from it through
//! docker (insecure-registries from the rendered daemon.json), kubeadm.yml names docker's
//! CRI socket, and clean leaves both hosts as they were — no unit, process or mount left.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use testenv::fixture::{RootfsOptions, Runtime};
use testenv::hosts::{Cluster, UpOptions};

#[test]
fn docker_runtime_apply_pull_and_clean_on_two_hosts() {
    let out = testenv::cache::cache_dir().join("e2e-rootfs-docker");
    let rootfs = testenv::fixture::build_rootfs(
        &out,
        &RootfsOptions {
            runtime: Runtime::Docker,
        },
    )
    .expect("building the docker fixture rootfs");
    let cluster = Cluster::up(UpOptions {
        nodes: 2,
        rootfs: Some(rootfs.dir.clone()),
        ..UpOptions::default()
    })
    .expect("bringing up 2 hosts");
    let clusterfile = cluster.clusterfile_path();
    let text = std::fs::read_to_string(&clusterfile).unwrap();
    assert!(text.contains("type: containerd"), "{text}");
    std::fs::write(
        &clusterfile,
        text.replace("type: containerd", "type: docker"),
    )
    .unwrap();
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    let before: Vec<_> = (0..2).map(|i| cluster.snapshot(i).unwrap()).collect();
    let docker = "docker -H unix:///run/docker.sock";

    let run = installer(&cluster, &["apply"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    for (i, ip) in ips.iter().enumerate() {
        assert_eq!(run.status(ip)["status"], "ok", "{ip}");
        assert_eq!(
            sh(&cluster, i, "systemctl is-active docker containerd").trim(),
            "active\nactive"
        );
        let kubeadm = sh(
            &cluster,
            i,
            &format!(
                "cat /var/lib/sealer/data/{}/rootfs/etc/kubeadm.yml",
                cluster.name()
            ),
        );
        assert!(
            kubeadm.contains("criSocket: /var/run/dockershim.sock"),
            "{kubeadm}"
        );
    }
    let running = sh(
        &cluster,
        0,
        &format!("{docker} ps --format '{{{{.Names}}}} {{{{.Image}}}}'"),
    );
    assert_eq!(running.trim(), "sealer-registry registry:2");
    sh(
        &cluster,
        1,
        &format!(
            "{docker} pull -q sea.hub:5000/{img} >/dev/null && {docker} rmi sea.hub:5000/{img} >/dev/null",
            img = rootfs.test_image
        ),
    );

    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    for (i, snap) in before.iter().enumerate() {
        assert_as_before(&cluster, i, snap);
        assert_nothing_left(
            &cluster,
            i,
            "'docker*' 'containerd*'",
            "dockerd|containerd|docker-regis",
        );
        let mounts = sh(
            &cluster,
            i,
            "awk '$5 ~ \"^/run/docker\" || $5 ~ \"^/var/lib/docker\"' /proc/self/mountinfo",
        );
        assert_eq!(mounts.trim(), "", "node{}: mounts left", i + 1);
    }
}
