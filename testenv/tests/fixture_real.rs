//! The realistic fixture rootfs: its layout follows the rootfs contract, its binaries are
//! real and built for this machine, its registry image loads into Docker, and a second
//! build with the same recipe is a cache hit. Building it needs Debian's packages (apt) and
//! loading the image a Docker engine: this suite is compiled with the `real-hosts` feature.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use installer_proto::elf::elf_machine_of;
use installer_proto::rootfs::arch_dir_for;
use std::process::Command;
use testenv::fixture::{RootfsOptions, Runtime, build_rootfs};

#[test]
fn realistic_rootfs_layout_binaries_and_registry_image() {
    let out = testenv::cache::cache_dir().join("test-fixture/rootfs");
    let info = build_rootfs(&out, &RootfsOptions::default()).unwrap();
    let dir = &info.dir;
    let arch = arch_dir_for(std::env::consts::ARCH).unwrap();
    for rel in [
        "Metadata",
        "imageList",
        "images/registry.tar",
        "etc/kubeadm.yml.tmpl",
        "etc/containerd/config.toml.tmpl",
        "scripts/init-container-runtime.sh",
        "scripts/init-registry.sh",
        "scripts/init-kube.sh",
        "scripts/clean-kube.sh",
        "scripts/clean-container-runtime.sh",
        "bin/kubelet",
        "bin/kubeadm",
    ] {
        assert!(dir.join(rel).is_file(), "{rel} missing");
    }
    // Real binaries for this machine, in its arch subtree.
    for rel in [
        "bin/kubectl",
        "bin/conntrack",
        "cri/containerd",
        "cri/ctr",
        "cri/runc",
    ] {
        let path = dir.join(arch).join(rel);
        let machine = elf_machine_of(&path)
            .unwrap()
            .unwrap_or_else(|| panic!("{rel} is not ELF"));
        assert!(
            machine.runs_on(std::env::consts::ARCH),
            "{rel}: {machine:?}"
        );
    }
    let meta = installer_proto::env::Metadata::parse(
        &std::fs::read_to_string(dir.join("Metadata")).unwrap(),
    )
    .unwrap();
    assert_eq!(meta.version.as_deref(), Some(info.kube_version.as_str()));
    // The registry data holds the test image in distribution's layout.
    let (repo, tag) = info.test_image.split_once(':').unwrap();
    assert!(
        dir.join(format!(
            "registry/docker/registry/v2/repositories/{repo}/_manifests/tags/{tag}/current/link"
        ))
        .is_file()
    );
    // The registry image tar has both layouts: docker loads it (ctr is exercised end to end).
    let mut tar = tar::Archive::new(std::fs::File::open(dir.join("images/registry.tar")).unwrap());
    let names: Vec<String> = tar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n == "index.json") && names.iter().any(|n| n == "manifest.json"),
        "{names:?}"
    );
    let had_image = Command::new("docker")
        .args(["image", "inspect", "registry:2"])
        .output()
        .unwrap()
        .status
        .success();
    let load = Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(dir.join("images/registry.tar"))
        .output()
        .unwrap();
    assert!(
        load.status.success(),
        "{}",
        String::from_utf8_lossy(&load.stderr)
    );
    let loaded = String::from_utf8_lossy(&load.stdout);
    assert!(loaded.contains("registry:2"), "{loaded}");
    if !had_image {
        // Leave the engine as it was.
        let _ = Command::new("docker").args(["rmi", "registry:2"]).output();
    }

    // Same recipe: a cache hit, fast.
    let started = std::time::Instant::now();
    build_rootfs(&out, &RootfsOptions::default()).unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn docker_variant_carries_dockerd() {
    let out = testenv::cache::cache_dir().join("test-fixture/rootfs-docker");
    let info = build_rootfs(
        &out,
        &RootfsOptions {
            runtime: Runtime::Docker,
        },
    )
    .unwrap();
    let arch = arch_dir_for(std::env::consts::ARCH).unwrap();
    for rel in ["cri/dockerd", "cri/docker", "cri/containerd"] {
        assert!(info.dir.join(arch).join(rel).is_file(), "{rel}");
    }
    assert!(info.dir.join("etc/docker/daemon.json.tmpl").is_file());
}
