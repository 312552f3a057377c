//! End to end: the Clusterfiles users bring from sealer. One written the way sealer's
//! older docs and its own saves write them (older apiVersions, `creationTimestamp`, host
//! labels, a kubeadm `ClusterConfiguration`, a v0.8 plugin with `on:`, an env key that is
//! no shell name) applies cleanly on two systemd hosts, and each host's `etc/kubeadm.yml`
//! holds the user's podSubnet. Before that, a template needing a key the env lacks stops
//! the run before a single byte reaches any host.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use std::fs;
use testenv::hosts::{Cluster, UpOptions};

/// The testenv Clusterfile rewritten the way sealer's material writes it.
fn as_sealer_writes(canonical: &str) -> String {
    let cluster = canonical
        .replacen("apiVersion: sealer.io/v2", "apiVersion: sealer.cloud/v2", 1)
        .replacen(
            "metadata:\n",
            "metadata:\n  creationTimestamp: null\n  labels:\n    site: lab\n",
            1,
        )
        .replacen(
            "      roles: [master]\n",
            "      roles: [master]\n      labels:\n        disk: ssd\n",
            1,
        )
        .replacen(
            "  hosts:\n",
            "  env:\n    - etcd-dir=/data/etcd\n    - PodCIDR=172.16.0.0/16\n  hosts:\n",
            1,
        );
    format!(
        "{cluster}status: {{}}\n---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
networking:
  podSubnet: 172.16.0.0/16
---
apiVersion: sealer.aliyun.com/v1alpha1
kind: Plugin
metadata:
  name: mark
spec:
  type: SHELL
  action: PostInstall
  on: node-role.kubernetes.io/master=
  data: mkdir -p /run/e2e && echo \"$HostIP\" > /run/e2e/plugin-ran
"
    )
}

#[test]
fn sealer_clusterfiles_apply_unchanged_and_a_missing_key_stops_before_shipping() {
    let rootfs = fixture_rootfs();
    let cluster = Cluster::up(UpOptions {
        nodes: 2,
        rootfs: Some(rootfs.dir.clone()),
        ..UpOptions::default()
    })
    .expect("bringing up 2 hosts");
    let ips: Vec<String> = cluster.hosts().iter().map(|h| h.ip.to_string()).collect();
    let data = format!("/var/lib/sealer/data/{}", cluster.name());
    let canonical = fs::read_to_string(cluster.clusterfile_path()).unwrap();

    // 1. A template needs a key the env lacks: refused on the controller, nothing sent.
    let overlay = tempfile::tempdir().unwrap();
    fs::create_dir_all(overlay.path().join("etc")).unwrap();
    fs::write(
        overlay.path().join("etc/etcd.conf.tmpl"),
        "data-dir: {{ index . \"etcd-dir\" }}\nlisten: {{ .HostIP }}\n",
    )
    .unwrap();
    fs::write(
        overlay.path().join("etc/etcd-port.conf.tmpl"),
        "port: {{ .EtcdPort }}\n",
    )
    .unwrap();
    let overlay_arg = overlay.path().display().to_string();
    let refused = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(refused.code, 2, "{}", refused.describe());
    // The canonical file has no etcd-dir either: both templates' problems are reported,
    // each once, for every host.
    for (key, file) in [
        ("etcd-dir", "etc/etcd.conf.tmpl"),
        ("EtcdPort", "etc/etcd-port.conf.tmpl"),
    ] {
        let line = refused
            .stderr
            .lines()
            .find(|l| l.contains(&format!("undefined key \"{key}\"")))
            .unwrap_or_else(|| panic!("{key} not reported: {}", refused.describe()));
        assert!(line.starts_with(&format!("{file}:")), "{line}");
        assert!(
            line.ends_with(&format!("(on {})", ips.join(", "))),
            "{line}"
        );
    }
    assert!(refused.stderr.contains("Nothing was sent to any host."));
    assert!(
        refused.of_type("transfer_done").is_empty(),
        "{}",
        refused.describe()
    );
    assert!(refused.of_type("transfer").is_empty());
    for i in 0..ips.len() {
        assert_eq!(
            sh(
                &cluster,
                i,
                &format!("test -e {data} && echo present || echo absent")
            )
            .trim(),
            "absent",
            "node{} received files",
            i + 1
        );
    }

    // 2. The Clusterfile as sealer writes it, with the keys defined: hosts end ok.
    fs::remove_file(overlay.path().join("etc/etcd-port.conf.tmpl")).unwrap();
    fs::write(cluster.clusterfile_path(), as_sealer_writes(&canonical)).unwrap();
    let run = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let warnings: Vec<String> = run
        .of_type("warning")
        .iter()
        .map(|w| w["message"].as_str().unwrap_or_default().to_string())
        .collect();
    for expected in [
        "apiVersion sealer.cloud/v2 is an older name for Cluster",
        "spec.hosts[0].labels: accepted and not acted on",
        "kind: ClusterConfiguration: merged into each host's etc/kubeadm.yml",
        "spec.on: sealer v0.8's name for scope",
        "env key \"etcd-dir\" is not a shell name",
    ] {
        assert!(
            warnings.iter().any(|w| w.contains(expected)),
            "no warning {expected:?} in {warnings:#?}"
        );
    }
    for (i, ip) in ips.iter().enumerate() {
        assert_eq!(run.status(ip)["status"], "ok", "{ip}: {}", run.describe());
        let kubeadm = sh(&cluster, i, &format!("cat {data}/rootfs/etc/kubeadm.yml"));
        let docs: Vec<yaml_serde::Value> = yaml_serde::Deserializer::from_str(&kubeadm)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        let config = docs
            .iter()
            .find(|d| d["kind"].as_str() == Some("ClusterConfiguration"))
            .unwrap_or_else(|| panic!("node{}: no ClusterConfiguration in\n{kubeadm}", i + 1));
        assert_eq!(
            config["networking"]["podSubnet"].as_str(),
            Some("172.16.0.0/16"),
            "{kubeadm}"
        );
        // The rootfs's own fields of that kind are kept under the user's.
        assert_eq!(
            config["networking"]["serviceSubnet"].as_str(),
            Some("10.96.0.0/22"),
            "{kubeadm}"
        );
        assert!(kubeadm.contains(ip.as_str()), "{kubeadm}");
        let etcd = sh(&cluster, i, &format!("cat {data}/rootfs/etc/etcd.conf"));
        assert_eq!(etcd, format!("data-dir: /data/etcd\nlisten: {ip}\n"));
    }
    // The v0.8 plugin ran on the master only.
    assert_eq!(sh(&cluster, 0, "cat /run/e2e/plugin-ran").trim(), ips[0]);
    assert_eq!(
        sh(
            &cluster,
            1,
            "test -e /run/e2e/plugin-ran && echo ran || echo not"
        )
        .trim(),
        "not"
    );

    // 3. Again: nothing runs.
    let again = installer(&cluster, &["apply", "--overlay", &overlay_arg]);
    assert_eq!(again.code, 0, "{}", again.describe());
    for ip in &ips {
        assert!(
            again.started(ip).is_empty(),
            "{ip}: {:?}",
            again.started(ip)
        );
    }
    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
}
