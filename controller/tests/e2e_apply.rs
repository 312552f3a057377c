//! End to end: the real `installer` against three systemd+sshd container hosts and the
//! realistic fixture rootfs (real containerd, real registry, real Debian binaries).
//! Scenarios 1–3 of the suite: apply, re-apply (nothing and one changed file), clean.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use std::fs;
use testenv::hosts::{Cluster, UpOptions};

fn overlay_with_prehook(dir: &std::path::Path) {
    fs::create_dir_all(dir.join("scripts")).unwrap();
    // preHook.sh, injected by the user: records its env and whether init-kube had already
    // run (its kubelet unit exists) — under /run, which no snapshot covers.
    fs::write(
        dir.join("scripts/preHook.sh"),
        "#!/bin/sh\nset -eu\nmkdir -p /run/e2e\nenv > /run/e2e/prehook.env\n\
         if [ -f /etc/systemd/system/kubelet.service ]; then echo after-init-kube > /run/e2e/prehook.order; fi\n",
    )
    .unwrap();
}

#[test]
fn apply_reapply_change_and_clean_on_three_hosts() {
    let rootfs = fixture_rootfs();
    let cluster = Cluster::up(UpOptions {
        nodes: 3,
        rootfs: Some(rootfs.dir.clone()),
        ..UpOptions::default()
    })
    .expect("bringing up 3 hosts");
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    let before: Vec<_> = (0..3).map(|i| cluster.snapshot(i).unwrap()).collect();
    let overlay = tempfile::tempdir().unwrap();
    overlay_with_prehook(overlay.path());
    let overlay_arg = overlay.path().display().to_string();

    // 1. apply
    let run = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(run.code, 0, "{}", run.describe());
    for (i, ip) in ips.iter().enumerate() {
        assert_eq!(run.status(ip)["status"], "ok", "{ip}: {}", run.describe());
        assert_eq!(run.settled_once(ip), run.started(ip), "{ip}");
        // bin/ installed.
        sh(
            &cluster,
            i,
            "test -x /usr/local/bin/kubelet && test -x /usr/local/bin/kubeadm",
        );
        // Rendered configs hold this host's values.
        let kubeadm = sh(
            &cluster,
            i,
            &format!(
                "cat /var/lib/sealer/data/{}/rootfs/etc/kubeadm.yml",
                cluster.name()
            ),
        );
        assert!(
            kubeadm.contains(ip.as_str()),
            "node{}: kubeadm.yml lacks {ip}:\n{kubeadm}",
            i + 1
        );
        // containerd runs under systemd.
        assert_eq!(
            sh(&cluster, i, "systemctl is-active containerd").trim(),
            "active"
        );
        // The registry answers from every host through the /etc/hosts line.
        sh(&cluster, i, testenv::hosts::REGISTRY_ANSWERS_OVER_TLS);
        // preHook ran after init-kube, with the env.
        let env = sh(&cluster, i, "cat /run/e2e/prehook.env");
        assert!(env.contains(&format!("HostIP={ip}")), "{env}");
        assert_eq!(
            sh(&cluster, i, "cat /run/e2e/prehook.order").trim(),
            "after-init-kube"
        );
    }
    // The test image can be pulled from the registry on a worker.
    sh(
        &cluster,
        2,
        &format!(
            "{} && ctr -n e2e images rm sea.hub:5000/{} >/dev/null",
            testenv::hosts::ctr_pull("e2e", &rootfs.test_image),
            rootfs.test_image
        ),
    );
    // sealer-registry runs only on the registry host (master0).
    assert!(run.started(&ips[0]).contains(&"init-registry".to_string()));
    assert!(!run.started(&ips[1]).contains(&"init-registry".to_string()));

    // 2a. re-apply with nothing changed: no step runs, (almost) no bytes are sent.
    let again = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(again.code, 0, "{}", again.describe());
    for ip in &ips {
        assert!(
            again.started(ip).is_empty(),
            "{ip} ran steps again: {:?}",
            again.started(ip)
        );
        assert_eq!(again.files_sent(ip), 0);
        assert!(
            again.bytes_sent(ip) < 1024,
            "{ip}: {} bytes sent",
            again.bytes_sent(ip)
        );
    }

    // 2b. change one etc/ file (through an overlay): only it is sent (to the nodes: through
    // the registry), and only the steps
    // that use it run.
    fs::create_dir_all(overlay.path().join("etc")).unwrap();
    let sysctl = fs::read_to_string(rootfs.dir.join("etc/sysctl-k8s.conf")).unwrap();
    fs::write(
        overlay.path().join("etc/sysctl-k8s.conf"),
        format!("{sysctl}# changed by the e2e test\n"),
    )
    .unwrap();
    let changed = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(changed.code, 0, "{}", changed.describe());
    for ip in &ips {
        assert_eq!(changed.files_moved(ip), 1, "{ip}");
        let started = changed.started(ip);
        assert!(
            started.contains(&"init-kube".to_string()),
            "{ip}: {started:?}"
        );
        for untouched in ["install-bin", "init-registry", "hosts-file", "pre-hook"] {
            assert!(
                !started.contains(&untouched.to_string()),
                "{ip}: {untouched} ran: {started:?}"
            );
        }
    }

    // 3. clean: every host is back to its pre-apply snapshot, nothing of ours runs.
    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    for (i, snap) in before.iter().enumerate() {
        assert_as_before(&cluster, i, snap);
        assert_nothing_left(
            &cluster,
            i,
            "'containerd*' 'kubelet*'",
            "containerd|docker-regis|installer-age",
        );
    }
    // A second clean is a no-op.
    let again = installer(&cluster, &["clean"]);
    assert_eq!(again.code, 0, "{}", again.describe());
    // (The only thing it removes is the agent it uploaded for this very run.)
    for e in again.agent("undone", None) {
        assert!(
            e["what"]
                .as_str()
                .unwrap_or_default()
                .contains("installer-agent"),
            "{e}"
        );
    }
}
