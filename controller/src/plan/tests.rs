//! Plan tests: env layers, registry hosts and their data, plugins in scope, per-arch trees, errors.

use super::*;
use crate::clusterfile::parse_with_env;
use installer_proto::plan::HookPhase;
use installer_proto::rootfs::{arch_dir_for, hash_file_content};
use std::fs;
use std::path::Path;

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, content).unwrap();
}

const CLUSTER: &str = "apiVersion: sealer.io/v2
kind: Cluster
metadata: {name: prod}
spec:
  image: rootfs
  env: [SvcCIDR=10.96.0.0/16, PodCIDR=100.64.0.0/10, Shared=cluster]
  hosts:
    - ips: [10.0.0.1, 10.0.0.2]
      roles: [master]
    - ips: [10.0.0.3]
      roles: [node, gpu]
      env: [Shared=host, SvcCIDR=10.100.0.0/16, RegistryURL=mirror.local:5000]
  containerRuntime: {type: containerd}
  hostAliases:
    - {ip: 10.0.0.100, hostnames: [harbor.example.com]}
  registry:
    localRegistry: {domain: hub.local, port: 5050}
  dataRoot: /data
---
apiVersion: sealer.io/v1
kind: Plugin
metadata: {name: z-gpu}
spec: {type: SHELL, action: post-init-host, scope: gpu, data: nvidia-smi}
---
apiVersion: sealer.io/v1
kind: Plugin
metadata: {name: a-all}
spec: {type: SHELL, action: pre-init-host|pre-clean-host, scope: master|node, data: 'echo hi'}
";

fn cluster(text: &str) -> Clusterfile {
    parse_with_env("Clusterfile", text, &|_| None).unwrap()
}

fn facts(arch: &str, hostname: &str) -> Facts {
    Facts {
        arch: arch.into(),
        hostname: hostname.into(),
        ..Facts::default()
    }
}

/// A rootfs with Metadata, imageList, registry data and per-arch binaries.
fn rootfs(version: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "Metadata",
        &format!("{{\"version\":\"{version}\",\"arch\":\"amd64\"}}"),
    );
    write(
        root,
        "imageList",
        "registry.k8s.io/kube-apiserver:v1.23.0\nregistry.k8s.io/pause:3.6\n",
    );
    write(
        root,
        "etc/kubeadm.yml.tmpl",
        "apiVersion: {{ .KubeadmAPIVersion }}\n",
    );
    write(
        root,
        "registry/docker/registry/v2/repositories/pause/link",
        "sha",
    );
    write(root, "amd64/bin/kubelet", "amd64");
    write(root, "arm64/bin/kubelet", "arm64");
    dir
}

fn tree(root: &Path, arch: &str) -> MergedTree {
    MergedTree::merge(root, arch, &[], &mut hash_file_content).unwrap()
}

fn plan_for(cf: &Clusterfile, ip: &str, arch: &str, root: &Path) -> Plan {
    let host = cf.host(ip).unwrap();
    let registry = cf.is_registry_host(ip);
    let t = tree(root, arch_dir_for(arch).unwrap());
    build_plan(
        cf,
        host,
        &facts(arch, &format!("h-{ip}")),
        &t,
        registry,
        Timeouts::default(),
    )
    .unwrap()
}

#[test]
fn env_layers_builtins_cluster_and_host() {
    let cf = cluster(CLUSTER);
    let root = rootfs("v1.23.4");
    let master = plan_for(&cf, "10.0.0.2", "x86_64", root.path());
    let e = &master.env;
    assert_eq!(e["HostIP"], "10.0.0.2");
    assert_eq!(e["HostName"], "h-10.0.0.2", "from facts");
    assert_eq!(e["Master0IP"], "10.0.0.1");
    assert_eq!(e["ClusterName"], "prod");
    assert_eq!(e["Arch"], "amd64");
    assert_eq!(e["RootfsDir"], "/data/prod/rootfs");
    assert_eq!(e["RegistryDomain"], "hub.local");
    assert_eq!(e["RegistryPort"], "5050");
    assert_eq!(e["RegistryURL"], "hub.local:5050");
    assert_eq!(e["ContainerRuntime"], "containerd");
    assert_eq!(e["CriSocket"], "/run/containerd/containerd.sock");
    assert_eq!(e["KubeVersion"], "v1.23.4");
    assert_eq!(e["KubeadmAPIVersion"], "kubeadm.k8s.io/v1beta3");
    assert_eq!(e["PauseImage"], "hub.local:5050/pause:3.6");
    assert_eq!(e["KubeSvcIP"], "10.96.0.1");
    assert_eq!(e["DNSSvcIP"], "10.96.0.10");
    assert_eq!(e["Shared"], "cluster");
    assert_eq!(e["PodCIDR"], "100.64.0.0/10");

    let node = plan_for(&cf, "10.0.0.3", "aarch64", root.path());
    let e = &node.env;
    assert_eq!(e["Shared"], "host", "host env wins over cluster env");
    assert_eq!(
        e["RegistryURL"], "mirror.local:5000",
        "user env wins over built-ins"
    );
    assert_eq!(
        e["KubeSvcIP"], "10.100.0.1",
        "derived from the host's SvcCIDR"
    );
    assert_eq!(e["DNSSvcIP"], "10.100.0.10");
    assert_eq!(
        e["PauseImage"], "mirror.local:5000/pause:3.6",
        "re-homed to the RegistryURL the scripts see"
    );
    assert_eq!(e["Arch"], "arm64");
}

#[test]
fn kubeadm_api_version_and_cri_socket_boundaries() {
    let docker = CLUSTER.replace("type: containerd", "type: docker");
    let cf = cluster(&docker);
    for (version, api) in [
        ("v1.14.10", "kubeadm.k8s.io/v1beta1"),
        ("v1.15.0", "kubeadm.k8s.io/v1beta2"),
        ("v1.22.17", "kubeadm.k8s.io/v1beta2"),
        ("v1.23.0", "kubeadm.k8s.io/v1beta3"),
    ] {
        let root = rootfs(version);
        let p = plan_for(&cf, "10.0.0.1", "x86_64", root.path());
        assert_eq!(p.env["KubeadmAPIVersion"], api, "{version}");
        assert_eq!(p.env["KubeVersion"], version);
        assert_eq!(p.env["CriSocket"], "/var/run/dockershim.sock");
        assert_eq!(p.env["ContainerRuntime"], "docker");
    }
    // Without Metadata, imageList or SvcCIDR the derived keys are absent, not empty.
    let bare = tempfile::tempdir().unwrap();
    write(bare.path(), "etc/x", "x");
    let minimal = cluster(
        "apiVersion: sealer.io/v2\nkind: Cluster\nmetadata: {name: c}\nspec:\n  image: r\n  hosts: [{ips: [10.0.0.1], roles: [master]}]\n",
    );
    let p = plan_for(&minimal, "10.0.0.1", "x86_64", bare.path());
    for key in [
        "KubeVersion",
        "KubeadmAPIVersion",
        "PauseImage",
        "KubeSvcIP",
        "DNSSvcIP",
    ] {
        assert!(!p.env.contains_key(key), "{key}");
    }
    assert_eq!(p.env["RegistryURL"], "sea.hub:5000");
    assert_eq!(
        p.env["CriSocket"], "/var/run/dockershim.sock",
        "docker is the default"
    );
}

#[test]
fn registry_data_and_hosts_lines_follow_the_registry_hosts() {
    let cf = cluster(CLUSTER);
    assert_eq!(
        registry_hosts(&cf),
        ["10.0.0.1", "10.0.0.2"],
        "ha by default"
    );
    let root = rootfs("v1.23.0");
    let master = plan_for(&cf, "10.0.0.2", "x86_64", root.path());
    let node = plan_for(&cf, "10.0.0.3", "x86_64", root.path());
    let reg = "registry/docker/registry/v2/repositories/pause/link";
    assert!(master.registry.deploy && master.manifest.get(reg).is_some());
    assert!(!node.registry.deploy && node.manifest.get(reg).is_none());
    assert!(node.manifest.get("registry").is_none());
    assert!(node.manifest.get("etc/kubeadm.yml.tmpl").is_some());
    let lines = |p: &Plan| {
        p.hosts_entries
            .iter()
            .map(HostsEntry::line)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lines(&master),
        [
            "10.0.0.2 hub.local #hostalias-set-by-sealer",
            "10.0.0.100 harbor.example.com #hostalias-set-by-sealer"
        ]
    );
    assert_eq!(
        lines(&node),
        [
            "10.0.0.1 hub.local #hostalias-set-by-sealer",
            "10.0.0.2 hub.local #hostalias-set-by-sealer",
            "10.0.0.100 harbor.example.com #hostalias-set-by-sealer"
        ]
    );

    let single = cluster(&CLUSTER.replace("port: 5050}", "port: 5050, ha: false}"));
    assert_eq!(registry_hosts(&single), ["10.0.0.1"]);
    let second_master = plan_for(&single, "10.0.0.2", "x86_64", root.path());
    assert!(!second_master.registry.deploy);
    assert!(second_master.manifest.get(reg).is_none());
    assert_eq!(
        lines(&second_master)[0],
        "10.0.0.1 hub.local #hostalias-set-by-sealer"
    );
}

#[test]
fn per_arch_tree_plugins_roles_and_plan_fields() {
    let cf = cluster(CLUSTER);
    let root = rootfs("v1.23.0");
    let amd = plan_for(&cf, "10.0.0.3", "x86_64", root.path());
    let arm = plan_for(&cf, "10.0.0.3", "aarch64", root.path());
    let kubelet = |p: &Plan| {
        p.manifest
            .get("bin/kubelet")
            .unwrap()
            .sha256()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        kubelet(&amd),
        installer_proto::manifest::sha256_bytes(b"amd64")
    );
    assert_eq!(
        kubelet(&arm),
        installer_proto::manifest::sha256_bytes(b"arm64")
    );
    assert!(amd.manifest.get("arm64").is_none() && amd.manifest.get("amd64").is_none());

    assert_eq!(amd.cluster, "prod");
    assert_eq!(amd.data_root, "/data");
    assert_eq!(amd.rootfs_dir(), "/data/prod/rootfs");
    assert_eq!(amd.roles, ["node", "gpu"]);
    let names: Vec<_> = amd.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a-all", "z-gpu"], "in scope, sorted by name");
    assert_eq!(
        amd.plugins[0].phases,
        [HookPhase::PreInitHost, HookPhase::PreCleanHost]
    );
    let master = plan_for(&cf, "10.0.0.1", "x86_64", root.path());
    let names: Vec<_> = master.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["a-all"]);
    assert_eq!(master.timeouts, Timeouts::default());
}

#[test]
fn errors_name_the_host_or_file() {
    let cf = cluster(CLUSTER);
    let root = rootfs("v1.23.0");
    let host = cf.host("10.0.0.1").unwrap();
    let t = tree(root.path(), "amd64");
    let err = build_plan(
        &cf,
        host,
        &facts("riscv64", "h"),
        &t,
        true,
        Timeouts::default(),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "host 10.0.0.1: architecture riscv64 is not supported; hosts must be x86_64 or aarch64"
    );

    write(root.path(), "Metadata", "version: v1.23");
    let t = tree(root.path(), "amd64");
    let err = build_plan(
        &cf,
        host,
        &facts("x86_64", "h"),
        &t,
        true,
        Timeouts::default(),
    )
    .unwrap_err()
    .to_string();
    let path = root.path().join("Metadata");
    assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
    assert!(
        err.ends_with("Metadata must be JSON such as {\"version\":\"v1.19.8\",\"arch\":\"amd64\"}"),
        "{err}"
    );
}

#[test]
fn kubeadm_documents_go_into_every_plan_and_need_the_template() {
    let mut cf = cluster(CLUSTER);
    let doc = "apiVersion: kubeadm.k8s.io/v1beta3\nkind: ClusterConfiguration\nnetworking:\n  podSubnet: 10.244.0.0/16\n";
    cf.kubeadm = vec![doc.to_string()];
    let root = rootfs("v1.25.0");
    for (ip, arch) in [("10.0.0.1", "x86_64"), ("10.0.0.3", "aarch64")] {
        assert_eq!(plan_for(&cf, ip, arch, root.path()).kubeadm, [doc], "{ip}");
    }
    // A rootfs with a plain etc/kubeadm.yml only: refused as the rootfs's problem, for
    // every host alike (no host in the message).
    fs::remove_file(root.path().join("etc/kubeadm.yml.tmpl")).unwrap();
    write(
        root.path(),
        "etc/kubeadm.yml",
        "apiVersion: kubeadm.k8s.io/v1beta3\n",
    );
    let host = cf.host("10.0.0.1").unwrap();
    let t = tree(root.path(), "amd64");
    let err = build_plan(
        &cf,
        host,
        &facts("x86_64", "h"),
        &t,
        true,
        Timeouts::default(),
    )
    .unwrap_err();
    assert!(matches!(err, PlanBuildError::Rootfs(_)), "{err}");
    assert!(
        err.to_string()
            .contains("ships etc/kubeadm.yml as a plain file"),
        "{err}"
    );
}
