//! End to end with ClusterImages in sealer v0.9 form (`testenv::fixture::sealer_v09`): the
//! runtime installed by `scripts/docker.sh` / `containerd.sh` from `cri/*.tar.gz` (docker.sh
//! also runs init-kube.sh itself), removed by `uninstall-*.sh`, and a registry that serves
//! TLS only, from the `certs/` the installer places. Three systemd hosts (one master, the
//! only registry host, and two nodes), both variants in turn on the same hosts: every host
//! pulls and runs an image from `sea.hub:5000` through its own runtime over TLS, the
//! registry key is on the registry host only, a second apply runs nothing, and clean puts
//! every host back as it was.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use testenv::fixture::{RootfsInfo, Runtime};
use testenv::hosts::{Cluster, REGISTRY_ANSWERS_OVER_TLS, UpOptions};

fn variant(runtime: Runtime) -> RootfsInfo {
    let cache = testenv::cache::cache_dir();
    let (base, out) = match runtime {
        Runtime::Docker => ("e2e-rootfs-docker", "e2e-rootfs-sealer-v09-docker"),
        Runtime::Containerd => ("e2e-rootfs", "e2e-rootfs-sealer-v09-containerd"),
    };
    testenv::fixture::build_sealer_v09_rootfs(&cache.join(out), &cache.join(base), runtime)
        .expect("building the sealer v0.9 fixture")
}

/// Points the cluster's Clusterfile at `rootfs` with `runtime`.
fn use_image(cluster: &Cluster, rootfs: &RootfsInfo, runtime: &str) {
    let path = cluster.clusterfile_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let text: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("image:") {
                format!("  image: '{}'", rootfs.dir.display())
            } else if l.trim_start().starts_with("type:") {
                format!("    type: {runtime}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, text + "\n").unwrap();
}

/// What host `i` runs to pull the test image from the registry and run it once, through
/// the host's own runtime (its trust of the registry is what apply placed), then remove
/// both.
fn pull_and_run(runtime: Runtime, image: &str) -> String {
    let reference = format!("sea.hub:5000/{image}");
    match runtime {
        Runtime::Docker => format!(
            "docker pull -q {reference} >/dev/null && \
             docker run --rm --network none --entrypoint /bin/sh {reference} -c 'echo ran' && \
             docker rmi {reference} >/dev/null"
        ),
        Runtime::Containerd => format!(
            "{pull} && \
             ctr -n e2e run --rm --net-host --cgroup \"/tls-check-$(hostname)\" {reference} tls-check /bin/sh -c 'echo ran' && \
             ctr -n e2e images rm {reference} >/dev/null",
            pull = testenv::hosts::ctr_pull("e2e", image)
        ),
    }
}

#[test]
fn sealer_v09_images_with_a_tls_registry_on_three_hosts() {
    let docker = variant(Runtime::Docker);
    let containerd = variant(Runtime::Containerd);
    let cluster = Cluster::up(UpOptions {
        nodes: 3,
        rootfs: Some(docker.dir.clone()),
        ..UpOptions::default()
    })
    .expect("bringing up 3 hosts");
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    let before: Vec<_> = (0..3).map(|i| cluster.snapshot(i).unwrap()).collect();
    let rootfs_dir = format!("/var/lib/sealer/data/{}/rootfs", cluster.name());

    for (runtime, name, rootfs) in [
        (Runtime::Docker, "docker", &docker),
        (Runtime::Containerd, "containerd", &containerd),
    ] {
        use_image(&cluster, rootfs, name);
        let run = installer(&cluster, &["apply"]);
        assert_eq!(run.code, 0, "{name}: {}", run.describe());
        for (i, ip) in ips.iter().enumerate() {
            assert_eq!(run.status(ip)["status"], "ok", "{name} {ip}");
            let started = run.started(ip);
            for step in ["init-container-runtime", "registry-trust", "init-kube"] {
                assert!(
                    started.contains(&step.to_string()),
                    "{name} {ip}: {started:?}"
                );
            }
            assert_eq!(
                started.contains(&"init-registry".to_string()),
                i == 0,
                "{name} {ip}: the master is the only registry host: {started:?}"
            );
            // The runtime came from the image's archive, as sealer's scripts install it.
            let active = sh(&cluster, i, &format!("systemctl is-active {name}"));
            assert_eq!(active.trim(), "active", "{name} {ip}");
            assert_eq!(
                sh(&cluster, i, "systemctl is-enabled kubelet").trim(),
                "enabled"
            );
            // TLS, verified with the cluster CA; the registry has no plain-HTTP side.
            sh(&cluster, i, REGISTRY_ANSWERS_OVER_TLS);
            sh(
                &cluster,
                i,
                "! curl -sf -o /dev/null --max-time 5 http://sea.hub:5000/v2/",
            );
            let ran = sh(&cluster, i, &pull_and_run(runtime, &rootfs.test_image));
            assert_eq!(ran.trim(), "ran", "{name} {ip}");
        }
        // The key: on the registry host only, 0600; no other host holds any of it.
        let key = format!("{rootfs_dir}/certs/sea.hub.key");
        assert_eq!(sh(&cluster, 0, &format!("stat -c %a {key}")).trim(), "600");
        let key_line = sh(&cluster, 0, &format!("sed -n 2p {key}"));
        assert!(key_line.trim().len() > 40, "{key_line}");
        for i in 1..3 {
            sh(&cluster, i, &format!("test ! -e {rootfs_dir}/certs"));
            let holders = sh(
                &cluster,
                i,
                &format!(
                    "grep -rlF -- '{}' /etc /root /var/lib /run /tmp 2>/dev/null || true",
                    key_line.trim()
                ),
            );
            assert_eq!(holders.trim(), "", "{name}: node{} holds the key", i + 1);
        }

        // Nothing changed: nothing runs.
        let again = installer(&cluster, &["apply"]);
        assert_eq!(again.code, 0, "{name}: {}", again.describe());
        for ip in &ips {
            assert_eq!(
                again.started(ip),
                Vec::<String>::new(),
                "{name} {ip}: {}",
                again.describe()
            );
        }

        let clean = installer(&cluster, &["clean"]);
        assert_eq!(clean.code, 0, "{name}: {}", clean.describe());
        for (i, snap) in before.iter().enumerate() {
            assert_as_before(&cluster, i, snap);
            assert_nothing_left(
                &cluster,
                i,
                "'docker*' 'containerd*' 'kubelet*'",
                "dockerd|containerd|registry",
            );
        }
    }
}
