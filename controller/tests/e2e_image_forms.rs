//! End to end: a ClusterImage kept as an image gives the hosts exactly what its directory
//! form gives. The realistic rootfs is applied to two systemd hosts as a directory, then the
//! same tree as an OCI image layout, an OCI archive of two layers (the second whites out a
//! file and a directory the first added), a docker archive, and a two-platform index (the
//! other platform's image different): each time nothing is sent and no step runs — the
//! hosts already have every byte — and every host's rootfs copy and `/usr/local/bin` read
//! the same. Then clean puts both hosts back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

mod e2e_common;

use e2e_common::*;
use std::path::{Path, PathBuf};
use tar::EntryType as T;
use testenv::hosts::Cluster;
use testenv::image_layout::{LayerCompression as C, Layout, tar, tree_tar};

/// The OCI name of this machine's architecture, and another one.
fn arches() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "aarch64" => ("arm64", "amd64"),
        _ => ("amd64", "arm64"),
    }
}

/// Writes every image form of `tree` under `dir`; returns (form, `spec.image` path).
fn forms(tree: &Path, dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let (arch, other) = arches();
    let layer = tree_tar(tree).unwrap();
    let mut out = Vec::new();

    let mut layout = Layout::default();
    let image = layout.image(arch, &[], &[(layer.clone(), C::Gzip)]);
    layout.index(&[(image, None)]);
    layout.write_to(&dir.join("oci-layout")).unwrap();
    out.push(("an OCI layout", dir.join("oci-layout")));

    // Two layers: the tree with a file and a directory more, then their whiteouts.
    let plus = dir.join("tree-plus");
    let copied = std::process::Command::new("cp")
        .arg("-al")
        .arg(tree)
        .arg(&plus)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::write(plus.join("etc/stale.conf"), "gone in the next layer\n").unwrap();
    std::fs::create_dir(plus.join("stale")).unwrap();
    std::fs::write(plus.join("stale/x"), "x\n").unwrap();
    let lower = tree_tar(&plus).unwrap();
    let whiteouts = tar(&[
        ("etc/.wh.stale.conf", T::Regular, "", 0o644, b""),
        (".wh.stale", T::Regular, "", 0o644, b""),
    ]);
    let mut two = Layout::default();
    let image = two.image(arch, &[], &[(lower, C::Zstd), (whiteouts, C::None)]);
    two.index(&[(image, None)]);
    std::fs::write(dir.join("image.oci.tar"), two.tar("")).unwrap();
    out.push(("an OCI archive of two layers", dir.join("image.oci.tar")));

    let docker = Layout::docker(arch, &[], &[(layer, C::None)]);
    std::fs::write(dir.join("image.docker.tar"), docker.tar("")).unwrap();
    out.push(("a docker archive", dir.join("image.docker.tar")));

    // A multi-platform ClusterImage holds each platform's merged tree: the base with that
    // architecture's subtree laid over it, and no subtrees of its own.
    let flat = dir.join(format!("tree-{arch}"));
    let flattened = std::process::Command::new("sh")
        .arg("-c")
        .arg(r#"cp -al "$1" "$2" && cp -alf "$1/$3/." "$2/" && rm -rf "$2/amd64" "$2/arm64""#)
        .args([
            "flatten",
            &tree.to_string_lossy(),
            &flat.to_string_lossy(),
            arch,
        ])
        .status()
        .unwrap();
    assert!(flattened.success());
    let mut index = Layout::default();
    let own = index.image(arch, &[], &[(tree_tar(&flat).unwrap(), C::Gzip)]);
    let foreign = index.image(
        other,
        &[],
        &[(
            tar(&[
                ("etc/", T::Directory, "", 0o755, b""),
                ("etc/other-platform", T::Regular, "", 0o644, b"x"),
            ]),
            C::Gzip,
        )],
    );
    index.index(&[(own, Some(arch)), (foreign, Some(other))]);
    index.write_to(&dir.join("two-platform")).unwrap();
    out.push(("a two-platform index", dir.join("two-platform")));
    out
}

/// Host `i`'s rootfs copy and `/usr/local/bin`: every path with its mode, and each file's
/// sha256 (the agent's state directory, which records each run, left out).
fn host_tree(cluster: &Cluster, i: usize) -> String {
    let data = format!("/var/lib/sealer/data/{}", cluster.name());
    sh(
        cluster,
        i,
        &format!(
            "cd {data} && find rootfs /usr/local/bin -printf '%p %y %m %l\\n' | sort && \
             find rootfs /usr/local/bin -type f -print0 | sort -z | xargs -0 sha256sum"
        ),
    )
}

#[test]
fn every_image_form_gives_the_hosts_what_the_directory_gives() {
    let rootfs = fixture_rootfs();
    let (cluster, ips) = up(2, &rootfs.dir);
    let before: Vec<_> = (0..2).map(|i| cluster.snapshot(i).unwrap()).collect();
    let images = tempfile::tempdir_in(cluster.workdir()).unwrap();
    let forms = forms(&rootfs.dir, images.path());

    let run = installer(&cluster, &["apply"]);
    assert_eq!(run.code, 0, "{}", run.describe());
    let trees: Vec<String> = (0..2).map(|i| host_tree(&cluster, i)).collect();
    assert!(trees[0].contains("rootfs/etc/kubeadm.yml"), "{}", trees[0]);

    for (form, image) in &forms {
        set_image(&cluster, image);
        let run = installer(&cluster, &["apply"]);
        assert_eq!(run.code, 0, "{form}: {}", run.describe());
        for (i, ip) in ips.iter().enumerate() {
            assert_eq!(run.status(ip)["status"], "ok", "{form} {ip}");
            assert_eq!(
                run.files_sent(ip),
                0,
                "{form} {ip}: the host had every byte"
            );
            assert_eq!(
                run.started(ip),
                Vec::<String>::new(),
                "{form} {ip}: the same inputs, so no step runs: {}",
                run.describe()
            );
            assert_eq!(host_tree(&cluster, i), trees[i], "{form} {ip}");
        }
    }

    let clean = installer(&cluster, &["clean"]);
    assert_eq!(clean.code, 0, "{}", clean.describe());
    for (i, snap) in before.iter().enumerate() {
        assert_as_before(&cluster, i, snap);
    }
}
