//! The agent by hand inside a real systemd host, with no `init-registry.sh` in the rootfs:
//! the agent itself loads `images/registry.tar` into the containerd that
//! `init-container-runtime.sh` installed, runs `sealer-registry`, waits for `/v2/`, and
//! `clean` takes it all away again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use std::process::Command;
use testenv::hosts::{Cluster, UpOptions};

fn docker(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_agent_starts_sealer_registry_itself_and_clean_removes_it() {
    let fixture = fixture_rootfs();
    let rootfs = tempfile::tempdir().unwrap();
    let status = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture.dir.display()))
        .arg(rootfs.path())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::remove_file(rootfs.path().join("scripts/init-registry.sh")).unwrap();

    let cluster = Cluster::up(UpOptions {
        nodes: 1,
        ..UpOptions::default()
    })
    .unwrap();
    let host = &cluster.hosts()[0];
    let before = cluster.snapshot(0).unwrap();
    let agent = agent_dir().join(format!("installer-agent-{}", std::env::consts::ARCH));
    docker(&[
        "cp",
        &agent.display().to_string(),
        &format!("{}:/root/installer-agent", host.container),
    ]);
    docker(&[
        "cp",
        &rootfs.path().display().to_string(),
        &format!("{}:/root/rootfs", host.container),
    ]);

    let ip = host.ip.to_string();
    let apply = sh(
        &cluster,
        0,
        &format!(
            "/root/installer-agent apply --rootfs /root/rootfs --cluster reg --registry-host \
             --host-ip {ip} --role master --container-runtime containerd --registry-timeout 60 2>&1"
        ),
    );
    assert!(apply.contains("apply: ok"), "{apply}");
    assert!(apply.contains("init-registry"), "{apply}");
    let code = sh(
        &cluster,
        0,
        "curl -s -o /dev/null -w '%{http_code}' http://sea.hub:5000/v2/",
    );
    assert_eq!(code, "200");
    let tasks = sh(&cluster, 0, "ctr -n default tasks ls");
    assert!(
        tasks.contains("sealer-registry") && tasks.contains("RUNNING"),
        "{tasks}"
    );
    let facts = sh(&cluster, 0, "/root/installer-agent facts --cluster reg");
    let facts: serde_json::Value = serde_json::from_str(&facts).unwrap();
    assert_eq!(facts["systemd"], true);
    assert!(
        facts["runtimes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "ctr"),
        "{facts}"
    );
    assert!(
        facts["state"]["steps_done"].as_array().unwrap().len() >= 5,
        "{facts}"
    );

    let clean = sh(
        &cluster,
        0,
        "/root/installer-agent clean --cluster reg 2>&1",
    );
    assert!(clean.contains("clean: ok"), "{clean}");
    assert!(clean.contains("container sealer-registry"), "{clean}");
    let left = sh(&cluster, 0, "pgrep -l 'containerd|docker-regis' || true");
    assert_eq!(left.trim(), "", "processes left after clean");
    // The test's own copies (docker cp, after the snapshot) are not the agent's to remove;
    // snapshots cover /root.
    sh(&cluster, 0, "rm -rf /root/installer-agent /root/rootfs");
    assert_as_before(&cluster, 0, &before);
}
